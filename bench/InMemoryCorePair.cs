using System.Net;
using Transport.Dtls;
using Transport.Ice;
using Transport.Streaming.Sdp;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// Two <see cref="PeerConnectionCore"/>s (A controlling and offering, B controlled) whose datagrams are handed from one
/// to the other in memory on virtual time: no socket, no thread. The benches over the datagram path
/// (<see cref="DataChannelAllocationBenchmarks"/>, <see cref="DatagramPathBenchmarks"/>) share it; each passes how it
/// drains a core's events (called after every datagram a core takes in, and after each exchange).
/// </summary>
internal sealed class InMemoryCorePair : IDisposable
{
    private static readonly DtlsCertificate Certificate =
        DtlsCertificate.CreateSelfSigned(DateTimeOffset.UnixEpoch.AddYears(50), DateTimeOffset.UnixEpoch.AddYears(80));
    private static readonly IPEndPoint EndA = new(IPAddress.Parse("10.0.0.1"), 1000), EndB = new(IPAddress.Parse("10.0.0.2"), 2000);

    private readonly byte[] _packet = new byte[2048];
    private readonly Action<PeerConnectionCore> _drain;

    public InMemoryCorePair(bool leasedMessages, Action<PeerConnectionCore> drain)
    {
        PeerConnectionOptions Options(IceRole role) =>
            new() { Certificate = Certificate, Ice = new IceAgentOptions { Role = role }, LeasedMessages = leasedMessages };
        A = new PeerConnectionCore(Options(IceRole.Controlling));
        B = new PeerConnectionCore(Options(IceRole.Controlled));
        A.AddHostCandidate(EndA);
        B.AddHostCandidate(EndB);
        _drain = drain;
    }

    public PeerConnectionCore A { get; }
    public PeerConnectionCore B { get; }
    /// <summary>The virtual clock.</summary>
    public TimeSpan Now { get; private set; }
    /// <summary>Datagrams handed over so far, both ways.</summary>
    public long Datagrams { get; private set; }

    /// <summary>A offers (after the caller added its tracks), B answers, A applies the answer; each parsed from its text.</summary>
    public void Negotiate()
    {
        var offer = SessionDescription.Parse(A.CreateOffer(Now).ToString());
        var answer = SessionDescription.Parse(B.CreateAnswer(offer, Now).ToString());
        A.SetRemoteDescription(answer, Now);
    }

    /// <summary>One round: every datagram each way, then virtual time to the next deadline when nothing moved.</summary>
    public void Step()
    {
        if (Exchange()) return;
        var next = Min(A.PollTimeout(), B.PollTimeout()) ?? Now + TimeSpan.FromMilliseconds(10);
        if (next > Now) Now = next;
        A.HandleTimeout(Now);
        B.HandleTimeout(Now);
    }

    /// <summary>Runs every datagram and every timer due up to now + <paramref name="duration"/>, then sets the clock there.</summary>
    public void RunFor(TimeSpan duration)
    {
        var until = Now + duration;
        for (var guard = 0; ; guard++)
        {
            if (guard > 100_000) throw new InvalidOperationException($"no quiet moment before {until}");
            if (Exchange()) continue;
            var next = Min(A.PollTimeout(), B.PollTimeout());
            if (next is null || next.Value > until) break;
            if (next.Value > Now) Now = next.Value;
            A.HandleTimeout(Now);
            B.HandleTimeout(Now);
        }
        Now = until;
        A.HandleTimeout(Now);
        B.HandleTimeout(Now);
        Exchange();
    }

    /// <summary>Every datagram A has for B, then every one B has for A, then both cores' events; true when any moved.</summary>
    public bool Exchange()
    {
        var any = false;
        while (A.TryPollTransmit(_packet, out var n, out _, out _))
        {
            any = true;
            Datagrams++;
            B.HandleDatagram(_packet.AsSpan(0, n), EndB, EndA, Now);
            _drain(B);
        }
        while (B.TryPollTransmit(_packet, out var n, out _, out _))
        {
            any = true;
            Datagrams++;
            A.HandleDatagram(_packet.AsSpan(0, n), EndA, EndB, Now);
            _drain(A);
        }
        _drain(A);
        _drain(B);
        return any;
    }

    private static TimeSpan? Min(TimeSpan? x, TimeSpan? y) => x is null ? y : y is null ? x : x < y ? x : y;

    public void Dispose()
    {
        A.Dispose();
        B.Dispose();
    }
}
