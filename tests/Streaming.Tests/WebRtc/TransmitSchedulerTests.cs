using System.Net;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Streaming.Tests.WebRtc;

/// <summary>
/// The order in which the peer connection's layers transmit (<see cref="TransmitScheduler"/>) on its own, over sources
/// that hold tagged datagrams, and on two connections that set up over the virtual link.
/// </summary>
public sealed class TransmitSchedulerTests
{
    private static readonly IPEndPoint Local = new(IPAddress.Loopback, 1000);
    private static readonly IPEndPoint Remote = new(IPAddress.Loopback, 2000);

    // Each datagram is one byte: its source times 10 plus its number within the source.
    private sealed class Sources : ITransmitSources
    {
        public readonly Queue<(byte Tag, TransmitKind Kind)>[] Pending = Enumerable.Range(0, 6).Select(_ => new Queue<(byte, TransmitKind)>()).ToArray();
        public Func<byte, bool> CanRoute = _ => true;
        public Action<byte>? Polled;
        public int Drained;
        private readonly int[] _added = new int[6];

        public void Add(TransmitSource source, int count, TransmitKind kind = TransmitKind.Udp)
        {
            for (var i = 0; i < count; i++) Pending[(int)source].Enqueue(((byte)((int)source * 10 + _added[(int)source]++), kind));
        }

        public bool TryPollIce(Span<byte> destination, out int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
        {
            (local, remote, kind, written) = (Local, Remote, TransmitKind.Udp, 0);
            if (!Pending[0].TryDequeue(out var d)) return false;
            (destination[0], written, kind) = (d.Tag, 1, d.Kind);
            Polled?.Invoke(d.Tag);
            return true;
        }

        public bool TryPoll(TransmitSource source, Span<byte> destination, out int written)
        {
            written = 0;
            if (!Pending[(int)source].TryDequeue(out var d)) return false;
            (destination[0], written) = (d.Tag, 1);
            Polled?.Invoke(d.Tag);
            return true;
        }

        public bool Route(Span<byte> destination, ref int written, out IPEndPoint? local, out IPEndPoint remote, out TransmitKind kind)
        {
            (local, remote, kind) = (Local, Remote, TransmitKind.Udp);
            return CanRoute(destination[0]);
        }

        public void OnDrained() => Drained++;
    }

    private static List<int> Drain(TransmitScheduler scheduler, Sources sources)
    {
        var sent = new List<int>();
        var buffer = new byte[16];
        while (scheduler.TryPoll(sources, buffer, out var n, out _, out _, out TransmitKind _))
        {
            Assert.Equal(1, n);
            sent.Add(buffer[0]);
        }
        return sent;
    }

    [Fact]
    public void SendsIceThenSpedMediaDtlsSctpAndRtcpInThatOrder()
    {
        var scheduler = new TransmitScheduler();
        var sources = new Sources();
        // Added lowest first: the order out is the scheduler's, not the order the outputs appeared in.
        foreach (var source in Enum.GetValues<TransmitSource>().Reverse()) sources.Add(source, 2);
        Assert.Equal([0, 1, 10, 11, 20, 21, 30, 31, 40, 41, 50, 51], Drain(scheduler, sources));
        Assert.Equal(1, sources.Drained);
        Assert.Equal([2L, 2L, 2L, 2L, 2L, 2L], Enum.GetValues<TransmitSource>().Select(scheduler.SentFrom));
        Assert.Equal(TransmitSource.Media, scheduler.Last);
    }

    [Fact]
    public void AnOutputThatAppearsDuringADrainGoesBeforeLowerOnesStillWaiting()
    {
        var scheduler = new TransmitScheduler();
        var sources = new Sources();
        sources.Add(TransmitSource.Sctp, 3);
        sources.Add(TransmitSource.Media, 1);
        // Sending the first SCTP packet makes a consent check due and a DTLS record (an alert, say).
        sources.Polled = tag =>
        {
            if (tag != 40) return;
            sources.Add(TransmitSource.Ice, 1);
            sources.Add(TransmitSource.Dtls, 1);
        };
        Assert.Equal([40, 0, 30, 41, 42, 50], Drain(scheduler, sources));
        Assert.Equal(1, sources.Drained);
    }

    [Fact]
    public void NoOutputIsStarvedWhileHigherOnesKeepComing()
    {
        var scheduler = new TransmitScheduler();
        var sources = new Sources();
        sources.Add(TransmitSource.Media, 5);
        sources.Add(TransmitSource.Sctp, 5);
        // A check response becomes due after every second transmit, for as long as the others send.
        var polls = 0;
        sources.Polled = _ =>
        {
            if (++polls % 2 == 0) sources.Add(TransmitSource.Ice, 1);
        };
        Assert.Equal([40, 41, 0, 42, 1, 43, 2, 44, 3, 50, 4, 51, 5, 52, 6, 53, 7, 54, 8], Drain(scheduler, sources));
        Assert.Equal(
            (9L, 5L, 5L),
            (scheduler.SentFrom(TransmitSource.Ice), scheduler.SentFrom(TransmitSource.Sctp), scheduler.SentFrom(TransmitSource.Media)));
        Assert.All(sources.Pending, q => Assert.Empty(q));
        Assert.Equal(1, sources.Drained);
    }

    [Fact]
    public void ADatagramThatCannotGoIsCountedAndTheNextOneGoes()
    {
        var scheduler = new TransmitScheduler();
        var sources = new Sources { CanRoute = tag => tag / 10 != (int)TransmitSource.Dtls };
        sources.Add(TransmitSource.Dtls, 2);
        sources.Add(TransmitSource.Sctp, 1);
        Assert.Equal([40], Drain(scheduler, sources));
        Assert.Equal(
            (2L, 2L, 0L, 1L),
            (scheduler.Unroutable, scheduler.Dropped, scheduler.SentFrom(TransmitSource.Dtls), scheduler.SentFrom(TransmitSource.Sctp)));
    }

    [Fact]
    public void TheFormWithoutTheTurnStreamPathSkipsItsTransmitsAndCountsThem()
    {
        var scheduler = new TransmitScheduler();
        var sources = new Sources();
        sources.Add(TransmitSource.Ice, 1, TransmitKind.TurnStream);
        sources.Add(TransmitSource.Ice, 1, TransmitKind.IceTcp);
        sources.Add(TransmitSource.Ice, 1, TransmitKind.Udp);
        var buffer = new byte[16];
        var sent = new List<(int, bool)>();
        while (scheduler.TryPoll(sources, buffer, out _, out _, out _, out bool iceTcp)) sent.Add((buffer[0], iceTcp));
        Assert.Equal([(1, true), (2, false)], sent);
        Assert.Equal((1L, 1L, 3L), (scheduler.SkippedTurnStream, scheduler.Dropped, scheduler.SentFrom(TransmitSource.Ice)));
    }

    // Records the source of every transmit of one connection, drain by drain.
    private sealed class Recorder(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : CorePeer(core, local, remote), IVirtualPeer
    {
        public List<List<TransmitSource>> Drains { get; } = [[]];

        bool IVirtualPeer.TryPollTransmit(Span<byte> destination, out int written)
        {
            if (Core.TryPollTransmit(destination, out written, out _, out _))
            {
                Drains[^1].Add(Core.Transmits.Last!.Value);
                return true;
            }
            if (Drains[^1].Count > 0) Drains.Add([]);
            return false;
        }
    }

    [Fact]
    public void ASetupSendsIceFirstAndEachDrainInTheSchedulersOrder()
    {
        var endA = new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1000);
        var endB = new IPEndPoint(IPAddress.Parse("10.0.0.2"), 2000);
        // Without SPED, whose checks would carry the DTLS flights as ICE's own packets.
        var options = new PeerConnectionOptions { Certificate = RealPeerKit.Certificate, Sped = false };
        var a = new PeerConnectionCore(options with { Ice = new Transport.Ice.IceAgentOptions { Role = Transport.Ice.IceRole.Controlling } });
        var b = new PeerConnectionCore(options with { Ice = new Transport.Ice.IceAgentOptions { Role = Transport.Ice.IceRole.Controlled } });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        a.SetRemoteDescription(b.CreateAnswer(a.CreateOffer(TimeSpan.Zero), TimeSpan.Zero), TimeSpan.Zero);
        var (ra, rb) = (new Recorder(a, endA, endB), new Recorder(b, endB, endA));
        var driver = new TwoPeerDriver(ra, rb);
        a.CreateDataChannel("order", null, driver.Now);
        Assert.True(driver.RunUntil(() => ra.Events.OfType<DataChannelOpened>().Any() && rb.Events.OfType<DataChannelOpened>().Any(),
            TimeSpan.FromSeconds(10)));
        foreach (var recorder in new[] { ra, rb })
        {
            var all = recorder.Drains.SelectMany(d => d).ToList();
            Assert.Equal(TransmitSource.Ice, all[0]);
            Assert.All(recorder.Drains, d => Assert.Equal(d.Order(), d));
            long Count(TransmitSource source) => all.Count(s => s == source);
            Assert.Equal(
                (Count(TransmitSource.Ice), Count(TransmitSource.Dtls), Count(TransmitSource.Sctp), 0L),
                (recorder.Core.Transmits.SentFrom(TransmitSource.Ice), recorder.Core.Transmits.SentFrom(TransmitSource.Dtls),
                 recorder.Core.Transmits.SentFrom(TransmitSource.Sctp), recorder.Core.Transmits.SentFrom(TransmitSource.Media)));
            Assert.Contains(TransmitSource.Dtls, all);
            Assert.Contains(TransmitSource.Sctp, all);
        }
    }
}
