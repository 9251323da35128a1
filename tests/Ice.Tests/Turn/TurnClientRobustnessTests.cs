using System.Net;
using Transport.Ice.Stun;
using Transport.Ice.Turn;
using static Transport.Ice.Tests.Turn.TurnHarness;

namespace Transport.Ice.Tests.Turn;

/// <summary>Failures of refreshes, permissions and close, and hostile input that must be dropped, never thrown.</summary>
public sealed class TurnClientRobustnessTests
{
    private static readonly StunAddress Peer = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Parse("203.0.113.5"), 7000));

    [Fact]
    public void AnUnansweredPermissionIsReportedAsATimeout()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Server.Answer = false;
        h.RunUntil(S(10));
        h.Client.CreatePermission(Peer, h.Now);
        h.RunUntil(S(100));
        var failed = Assert.Single(h.Events, e => e.Event is TurnPermissionFailed);
        Assert.Equal(S(49.5), failed.At);
        Assert.Equal(TurnFailureKind.Timeout, ((TurnPermissionFailed)failed.Event).Kind);
        Assert.False(h.Client.HasPermission(Peer));
        Assert.Equal(TurnClientState.Allocated, h.Client.State);
    }

    [Fact]
    public void ARefusedChannelRefreshUnbindsTheChannelAndDataFallsBackToIndications()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Client.BindChannel(Peer, h.Now);
        h.RunUntil(S(500));
        Assert.NotEqual(0, h.Client.GetBoundChannel(Peer));
        h.Server.FailMethod = (StunMethod.ChannelBind, StunErrorCode.BadRequest);
        h.RunUntil(S(600));
        var failed = Assert.Single(h.Events, e => e.Event is TurnChannelBindFailed);
        Assert.Equal(S(540), failed.At);
        Assert.Equal(0, h.Client.GetBoundChannel(Peer));
        var buffer = new byte[100];
        var n = h.Client.WrapSend(Peer, "x"u8, buffer);
        Assert.True(StunMessage.TryRead(buffer.AsSpan(0, n), out var m));
        Assert.Equal(StunClass.Indication, m.Class);
        // The permission installed by the binding stays, on its own timer.
        Assert.True(h.Client.HasPermission(Peer));
    }

    [Fact]
    public void CloseWithoutAnAnswerEndsWhenTheDeallocationTimesOut()
    {
        using var h = new TurnHarness();
        h.Start();
        h.RunUntil(S(100));
        h.Server.Answer = false;
        h.Client.Close(h.Now);
        h.RunUntil(S(200));
        var closed = Assert.Single(h.Events, e => e.Event is TurnClosed);
        Assert.Equal(S(139.5), closed.At);
        Assert.Contains("not confirmed", ((TurnClosed)closed.Event).Reason);
    }

    [Fact]
    public void CloseWhileAllocatingClosesAtOnceAndSendsNothingMore()
    {
        using var h = new TurnHarness();
        h.Server.Answer = false;
        h.Start();
        h.Client.Close(S(0.2));
        h.RunUntil(S(60));
        Assert.Single(h.Server.Requests);
        Assert.Single(h.EventsOf<TurnClosed>());
        Assert.Equal(TurnClientState.Closed, h.Client.State);
    }

    [Fact]
    public void DataBeforeTheAllocationIsDropped()
    {
        using var h = new TurnHarness();
        h.Server.Answer = false;
        h.Start();
        h.Receive(FakeTurnServer.DataIndication(Peer, "early"u8));
        Assert.Empty(h.EventsOf<TurnPeerData>());
        Assert.Equal(1, h.Client.Dropped.Unexpected);
    }

    [Fact]
    public void RandomAndCorruptedInputIsDroppedWithoutThrowing()
    {
        using var h = new TurnHarness();
        h.Start();
        h.Client.BindChannel(Peer, h.Now);
        h.Pump();
        var random = new Random(8656);
        var valid = FakeTurnServer.DataIndication(Peer, "payload"u8);
        var delivered = 0;
        for (var i = 0; i < 20_000; i++)
        {
            byte[] datagram;
            if (i % 2 == 0)
            {
                datagram = new byte[random.Next(0, 120)];
                random.NextBytes(datagram);
                if (datagram.Length > 0 && i % 4 == 0) datagram[0] = (byte)(0x40 + (datagram[0] & 0x0F)); // ChannelData-looking
            }
            else
            {
                datagram = (byte[])valid.Clone();
                datagram[random.Next(datagram.Length)] ^= (byte)(1 << random.Next(8)); // one bit error
                if (i % 3 == 0) datagram = datagram[..random.Next(datagram.Length)];
            }
            h.Client.HandleDatagram(datagram, FakeTurnServer.Address, h.Now);
            if (!h.Client.TryPollEvent(out var e)) continue;
            delivered++;
            Assert.IsType<TurnPeerData>(e);
            // A bit error inside the bytes FINGERPRINT covers is always caught. What gets through is a message
            // whose error hid the FINGERPRINT itself (its type flipped, or a longer DATA length swallowing it):
            // STUN makes FINGERPRINT optional, so such a message cannot be told from an unprotected one.
            Assert.True(StunMessage.TryRead(datagram, out var m) && !m.HasFingerprint, "a message with a FINGERPRINT got through corrupted");
        }
        Assert.Equal(TurnClientState.Allocated, h.Client.State);
        Assert.Equal(20_000, h.Client.Dropped.Total + delivered);
        Assert.True(h.Client.Dropped.BadFingerprint > 1000 && h.Client.Dropped.Malformed > 1000);
    }
}
