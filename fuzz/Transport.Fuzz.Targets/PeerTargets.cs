using System.Net;
using System.Text;
using Transport.Ice;
using Transport.Sctp;
using Transport.Streaming.Jsep;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;
using Transport.TestKit;

namespace Transport.Fuzz;

/// <summary>The whole stack's datagram entry: a connected peer connection core (ICE, DTLS, SCTP, SRTP demultiplexed).</summary>
public static class PeerTargets
{
    /// <summary>The targets.</summary>
    public static IEnumerable<FuzzTarget> All =>
    [
        new("peer-connected", Connected,
            "two connected peer connection cores (audio, video, a data channel); B receives the datagrams from A's address; then a " +
            "message must still cross both ways"),
    ];

    /// <summary>A core on the virtual link; its events are drained after every input (also the corpus builder's).</summary>
    internal sealed class Peer(PeerConnectionCore core, IPEndPoint local, IPEndPoint remote) : IVirtualPeer
    {
        public PeerConnectionCore Core { get; } = core;
        public List<PeerConnectionEvent> Events { get; } = new();
        public List<DataChannel> Opened { get; } = new();
        public List<string> Messages { get; } = new();
        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now) { Core.HandleDatagram(datagram, local, remote, now); Drain(); }
        public void HandleTimeout(TimeSpan now) { Core.HandleTimeout(now); Drain(); }
        public bool TryPollTransmit(Span<byte> destination, out int written) => Core.TryPollTransmit(destination, out written, out _, out _);
        public TimeSpan? PollTimeout() => Core.PollTimeout();
        public void Drain()
        {
            for (var i = 0; i < 100_000 && Core.TryPollEvent(out var e); i++)
            {
                if (Events.Count < 1000 && e is not DataChannelMessageReceived) Events.Add(e);
                if (e is DataChannelOpened o) Opened.Add(o.Channel);
                if (e is DataChannelMessageReceived m && Messages.Count < 1000) Messages.Add(Encoding.UTF8.GetString(m.Data));
            }
        }
    }

    /// <summary>A connected pair; B receives the datagrams; then data must flow both ways and both stay connected.</summary>
    public static void Connected(ReadOnlySpan<byte> data)
    {
        var datagrams = new List<byte[]>();
        foreach (var (offset, length) in FuzzRecords.Split(data)) datagrams.Add(data.Slice(offset, length).ToArray());
        ConnectedWith(datagrams, stepEvery: 1);
    }

    /// <summary>
    /// The connected target over any number of datagrams (the soak test sends 100,000); time advances 2 ms every <paramref name="stepEvery"/>.
    /// </summary>
    public static void ConnectedWith(IEnumerable<byte[]> datagrams, int stepEvery)
    {
        var endA = StunIceTargets.RemoteEnd;
        var endB = StunIceTargets.LocalEnd;
        using var a = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = DtlsTargets.ClientCertificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlling, Random = new Random(1) }
        });
        using var b = new PeerConnectionCore(new PeerConnectionOptions
        {
            Certificate = DtlsTargets.ServerCertificate,
            Ice = new IceAgentOptions { Role = IceRole.Controlled, Random = new Random(2) }
        });
        a.AddHostCandidate(endA);
        b.AddHostCandidate(endB);
        a.AddTrack(MediaKind.Audio);
        a.AddTrack(MediaKind.Video);
        a.CreateDataChannel("chat", null, TimeSpan.Zero);
        var offer = a.CreateOffer(TimeSpan.Zero);
        var answer = b.CreateAnswer(SessionDescription.Parse(offer.ToString()), TimeSpan.Zero);
        a.SetRemoteDescription(SessionDescription.Parse(answer.ToString()), TimeSpan.Zero);
        var pa = new Peer(a, endA, endB);
        var pb = new Peer(b, endB, endA);
        var driver = new TwoPeerDriver(pa, pb);
        if (!driver.RunUntil(() => pa.Opened.Count > 0 && pb.Opened.Count > 0, TimeSpan.FromSeconds(10)))
            throw new FuzzPropertyException($"the pair did not connect before the input: A {a.State}, B {b.State}");
        var n = 0;
        foreach (var d in datagrams)
        {
            pb.HandleDatagram(d, driver.Now);
            if (++n % stepEvery == 0) driver.RunFor(TimeSpan.FromMilliseconds(2));
        }
        driver.RunFor(TimeSpan.FromMilliseconds(500));
        if (a.State != ConnectionState.Connected || b.State != ConnectionState.Connected)
            throw new FuzzPropertyException($"garbage took the connection down: A {a.State}, B {b.State}");
        pa.Opened[0].Send("from a", driver.Now);
        pb.Opened[0].Send("from b", driver.Now);
        driver.RunUntil(() => pa.Messages.Contains("from b") && pb.Messages.Contains("from a"), TimeSpan.FromSeconds(10));
        if (!pa.Messages.Contains("from b") || !pb.Messages.Contains("from a"))
            throw new FuzzPropertyException("messages no longer cross after the input");
    }
}
