using System.Buffers.Binary;
using Transport.Dtls.Tls13;
using Transport.TestKit;
using Xunit.Abstractions;

namespace Transport.Dtls.Tests;

/// <summary>
/// DTLS 1.3 acknowledgement-driven retransmission (RFC 9147 7.1, 7.2, 5.8.1) on virtual time: partial-flight ACKs,
/// resending only unacknowledged records, a fully acknowledged flight not resent, bad ACKs dropped.
/// </summary>
public sealed class Dtls13AckTests(ITestOutputHelper output)
{
    private static DtlsOptions Fast(DtlsOptions o, int mtu) => Pairs13.V13(o) with
    {
        InitialRetransmitTimeout = TimeSpan.FromMilliseconds(50),
        MaxRetransmitTimeout = TimeSpan.FromMilliseconds(400),
        HandshakeTimeout = TimeSpan.FromSeconds(10),
        Mtu = mtu,
    };

    /// <summary>Records in a datagram: (protected with the unified header, whole record length).</summary>
    private static List<(bool Unified, int Length)> Records(byte[] datagram)
    {
        var list = new List<(bool, int)>();
        var rest = datagram.AsSpan();
        for (var i = 0; i < 64 && !rest.IsEmpty; i++)
        {
            if (Dtls13RecordHeader.IsUnified(rest[0]))
            {
                Assert.True(Dtls13RecordHeader.TryRead(rest, out _, out var consumed));
                list.Add((true, consumed));
                rest = rest[consumed..];
            }
            else
            {
                var n = 13 + BinaryPrimitives.ReadUInt16BigEndian(rest[11..]);
                list.Add((false, n));
                rest = rest[n..];
            }
        }
        return list;
    }

    private sealed record Sent(double Time, byte[] Data);

    private static (DtlsPeer C, DtlsPeer S, TwoPeerDriver D, List<Sent> A, List<Sent> B) Create(int serverMtu, Func<LinkEnd, Sent, bool> drop)
    {
        var link = new VirtualLink(1, LinkConditions.Clean(TimeSpan.FromMilliseconds(10)), LinkConditions.Clean(TimeSpan.FromMilliseconds(10)));
        var (c, s, d) = Pairs13.Create(o => Fast(o, 1200), o => Fast(o, serverMtu), link);
        var a = new List<Sent>();
        var b = new List<Sent>();
        d.Link.AddFilter(LinkEnd.A,
            m => { var x = new Sent(d.Now.TotalMilliseconds, m.ToArray()); a.Add(x); return drop(LinkEnd.A, x); }, _ => FilterAction.Drop);
        d.Link.AddFilter(LinkEnd.B,
            m => { var x = new Sent(d.Now.TotalMilliseconds, m.ToArray()); b.Add(x); return drop(LinkEnd.B, x); }, _ => FilterAction.Drop);
        return (c, s, d, a, b);
    }

    [Fact]
    public void LostDatagramOfAServerFlightIsAcknowledgedAroundAndOnlyItsRecordsAreResent()
    {
        // MTU 256: the server's hybrid flight spans many datagrams. Lose the first one carrying only protected
        // records (after the ServerHello), so later datagrams of the flight show the client a gap.
        var unifiedSeen = 0;
        byte[]? lost = null;
        var (c, s, d, a, b) = Create(256, (end, x) =>
        {
            if (end != LinkEnd.B || x.Time != 10 || lost is not null || !Dtls13RecordHeader.IsUnified(x.Data[0])) return false;
            if (++unifiedSeen < 1) return false;
            lost = x.Data;
            return true;
        });
        Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s) && !c.Connection.AwaitingAck, TimeSpan.FromSeconds(5)), Pairs13.Describe(c, s));
        d.RunFor(TimeSpan.FromSeconds(2));
        foreach (var x in b) output.WriteLine($"server {x.Time} ms {x.Data.Length} B {Records(x.Data).Count} records");
        foreach (var x in a) output.WriteLine($"client {x.Time} ms {x.Data.Length} B {Records(x.Data).Count} records");

        Assert.NotNull(lost);
        var flight = b.Where(x => x.Time == 10).ToList();
        Assert.True(flight.Count >= 4, $"flight of {flight.Count} datagrams");
        Assert.True(flight.IndexOf(flight.First(x => x.Data == lost)) < flight.Count - 1, "the lost datagram is not the flight's last");
        var lostRecords = Records(lost!);
        Assert.All(lostRecords, r => Assert.True(r.Unified));

        // The client saw the gap when the next datagram came (20 ms) and acknowledged what it had: one small datagram.
        Assert.True(c.Connection.PartialFlightAcksSent >= 1);
        var ack = Assert.Single(a, x => x.Time == 20);
        Assert.True(ack.Data.Length < 100 + 16 * 64, $"ACK of {ack.Data.Length} B");
        Assert.True(s.Connection.RecordsAcknowledged >= flight.Sum(x => Records(x.Data).Count(r => r.Unified)) - lostRecords.Count);

        // The server's retransmission (its 60 ms timer) carries exactly the lost records, not the whole flight.
        var resent = b.Where(x => x.Time is > 10 and < 70).ToList();
        Assert.NotEmpty(resent);
        Assert.All(resent, x =>
        {
            Assert.Equal(60, x.Time);
            Assert.Equal(lost!.Length, x.Data.Length);
            Assert.Equal(lostRecords.Select(r => r.Length), Records(x.Data).Select(r => r.Length));
        });
        Assert.Equal(lostRecords.Count * resent.Count, s.Connection.SelectiveRetransmittedRecords);
        Assert.True(resent.Sum(x => x.Data.Length) < flight.Sum(x => x.Data.Length) / 2);
        Assert.Equal(c.Connection.GetSrtpKeyingMaterial().LocalKey, s.Connection.GetSrtpKeyingMaterial().RemoteKey);
        Assert.Null(s.Connection.PollTimeout());
    }

    [Fact]
    public void LostLastDatagramIsAcknowledgedAroundOnTheClientTimerAndOnlyItIsResent()
    {
        // No later datagram shows a gap: the client's timer (50 ms) fires with the flight incomplete and it ACKs then.
        // MTU 400 so that the datagrams before the last carry protected records the client can acknowledge.
        byte[]? last = null;
        var (c, s, d, a, b) = Create(400, (end, x) =>
        {
            if (end != LinkEnd.B || x.Time != 10) return false;
            last = x.Data;
            return false;
        });
        // Find the flight's last datagram on a clean run, then lose it on a second run.
        Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s), TimeSpan.FromSeconds(5)));
        Assert.NotNull(last);
        var lostOnce = false;
        var count = b.Count(x => x.Time == 10);
        var seen = 0;
        // The lost datagram of this second handshake: its length can differ from the first run's by a byte or two (an
        // ECDSA signature's DER length varies), so the resend is compared with what was lost in this run.
        byte[]? lost = null;
        (c, s, d, a, b) = Create(400, (end, x) =>
        {
            if (end != LinkEnd.B || x.Time != 10 || lostOnce || ++seen < count) return false;
            lostOnce = true;
            lost = x.Data;
            return true;
        });
        Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s) && !c.Connection.AwaitingAck, TimeSpan.FromSeconds(5)), Pairs13.Describe(c, s));
        d.RunFor(TimeSpan.FromSeconds(2));
        foreach (var x in b) output.WriteLine($"server {x.Time} ms {x.Data.Length} B");
        foreach (var x in a) output.WriteLine($"client {x.Time} ms {x.Data.Length} B");
        Assert.True(lostOnce);
        Assert.Equal(1, c.Connection.PartialFlightAcksSent);
        // The client's 50 ms timer: its ACK and its ClientHello again; the server resends only the last datagram's
        // records at 60 ms (timer, and not again for the ClientHello arriving in the same instant).
        Assert.Contains(a, x => x.Time == 50 && x.Data.Length < 200);
        var resent = b.Where(x => x.Time is > 10 and < 70).ToList();
        Assert.All(resent, x => Assert.Equal(lost!.Length, x.Data.Length));
        Assert.Single(resent);
        Assert.Equal(Records(lost!).Count, s.Connection.SelectiveRetransmittedRecords);
        Assert.Null(s.Connection.PollTimeout());
    }

    [Fact]
    public void AnAckOfTheWholeFlightStopsItsRetransmission()
    {
        // The client's final flight (20 ms) is lost. Without an ACK the server resends its flight at 60 ms (see
        // Dtls13TimerTests.LostClientFinalFlightIsResentUntilAcknowledged); here the client acknowledges every record
        // of the server's flight at 25 ms, so the server sends nothing until the client's flight comes again at 80 ms.
        var (c, s, d, a, b) = Create(1200, (end, x) => end == LinkEnd.A && x.Time == 20);
        d.RunFor(TimeSpan.FromMilliseconds(25));
        Assert.Equal(DtlsState.Connected, c.Connection.State);
        Assert.Equal(TimeSpan.FromMilliseconds(60), s.Connection.PollTimeout());
        var numbers = s.Connection.FlightRecordNumbers13.Where(n => n.Epoch != 0).OrderBy(n => n.Sequence).ToList();
        Assert.NotEmpty(numbers);
        var body = new byte[2 + 16 * numbers.Count];
        BinaryPrimitives.WriteUInt16BigEndian(body, (ushort)(16 * numbers.Count));
        for (var i = 0; i < numbers.Count; i++)
        {
            BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(2 + 16 * i), numbers[i].Epoch);
            BinaryPrimitives.WriteUInt64BigEndian(body.AsSpan(10 + 16 * i), numbers[i].Sequence);
        }
        c.Connection.SealAck13(body);
        d.RunFor(TimeSpan.FromMilliseconds(15));
        Assert.True(s.Connection.FlightAcknowledged13);
        Assert.Equal(DtlsState.Handshaking, s.Connection.State);
        // Only the handshake deadline is left on the server.
        Assert.Equal(TimeSpan.FromSeconds(10) + TimeSpan.FromMilliseconds(10), s.Connection.PollTimeout());
        Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s) && !c.Connection.AwaitingAck, TimeSpan.FromSeconds(5)), Pairs13.Describe(c, s));
        d.RunFor(TimeSpan.FromSeconds(2));
        foreach (var x in b) output.WriteLine($"server {x.Time} ms {x.Data.Length} B");
        Assert.DoesNotContain(b, x => x.Time is > 10 and < 80);
        Assert.Contains(a, x => x.Time == 70);
        Assert.Contains(b, x => x.Time == 80);
        Assert.Equal(0, s.Connection.Counters.Retransmissions);
        Assert.Null(s.Connection.PollTimeout());
    }

    [Fact]
    public void MalformedAndOversizedAcksAreDroppedAndCounted()
    {
        var (c, s, d, _, _) = Create(1200, (_, _) => false);
        Assert.True(d.RunUntil(() => Pairs.BothConnected(c, s) && !c.Connection.AwaitingAck, TimeSpan.FromSeconds(5)), Pairs13.Describe(c, s));
        var before = s.Connection.Counters.DroppedFor(DtlsDropReason.Malformed);
        var received = s.Connection.AcksReceived;
        var oversized = new byte[2 + 16 * (DtlsConnection.MaxAckEntries + 1)];
        BinaryPrimitives.WriteUInt16BigEndian(oversized, (ushort)(oversized.Length - 2));
        byte[][] bad =
        [
            [],                                   // no length
            [0],                                  // half a length
            [0, 16, 1, 2, 3],                     // length beyond the body
            [0, 15, .. new byte[15]],             // not a whole record number
            [0, 0, 9],                            // trailing byte
            [0xFF, 0xFF, .. new byte[32]],        // length 65535
            oversized,                            // more record numbers than we accept
        ];
        foreach (var body in bad) c.Connection.SealAck13(body);
        d.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.Equal(before + bad.Length, s.Connection.Counters.DroppedFor(DtlsDropReason.Malformed));
        Assert.Equal(received, s.Connection.AcksReceived);
        // Still connected and working.
        Assert.Equal(DtlsState.Connected, s.Connection.State);
        var valid = new byte[2 + 16];
        BinaryPrimitives.WriteUInt16BigEndian(valid, 16);
        c.Connection.SealAck13(valid);
        d.RunFor(TimeSpan.FromMilliseconds(50));
        Assert.Equal(received + 1, s.Connection.AcksReceived);
        Assert.Equal(before + bad.Length, s.Connection.Counters.DroppedFor(DtlsDropReason.Malformed));
    }
}
