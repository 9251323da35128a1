using System.Buffers;
using System.Net;
using BenchmarkDotNet.Attributes;
using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Bench;

/// <summary>
/// The TURN data path per packet: ChannelData framing and parsing on their own, and through the client (WrapSend
/// with a bound channel, TryReceive of relayed ChannelData, a Send indication for comparison). Goal: 0 B allocated.
/// </summary>
[MemoryDiagnoser]
public class TurnBenchmarks
{
    private static readonly StunAddress Server = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 3478));
    private static readonly StunAddress Peer = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 50001));
    private static readonly StunAddress OtherPeer = StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 50002));

    private byte[] _payload = null!;
    private byte[] _frame = null!;
    private readonly byte[] _output = new byte[1500];
    private TurnClient _client = null!;

    [Params(100, 1200)]
    public int PayloadSize { get; set; }

    [GlobalSetup]
    public void Setup()
    {
        _payload = new byte[PayloadSize];
        new Random(1).NextBytes(_payload);
        _frame = new byte[ChannelData.GetSize(PayloadSize, padded: true)];
        ChannelData.Write(_frame, 0x4000, _payload, padded: true);
        _client = AllocatedClientWithChannel();
    }

    [GlobalCleanup]
    public void Cleanup() => _client.Dispose();

    [Benchmark(Description = "ChannelData.Write (padded)")]
    public int FrameChannelData() => ChannelData.Write(_output, 0x4000, _payload, padded: true);

    [Benchmark(Description = "ChannelData.TryRead")]
    public int ParseChannelData() => ChannelData.TryRead(_frame, out var message) ? message.Data.Length : -1;

    [Benchmark(Description = "TurnStreamFraming.TryReadFrame (TCP)")]
    public long DeframeFromStream()
    {
        // A pipe reader hands over a sequence; one ChannelData frame is taken off its front.
        var buffer = new ReadOnlySequence<byte>(_frame);
        return TurnStreamFraming.TryReadFrame(ref buffer, out var frame) == TurnFrameStatus.Complete ? frame.Length : -1;
    }

    [Benchmark(Description = "TurnClient.WrapSend (channel)")]
    public int ClientWrapChannel() => _client.WrapSend(Peer, _payload, _output);

    [Benchmark(Description = "TurnClient.TryReceive (channel)")]
    public int ClientReceiveChannel() =>
        _client.TryReceive(_frame, Server, TimeSpan.FromSeconds(1), out _, out var payload, out _) ? payload.Length : -1;

    [Benchmark(Description = "TurnClient.WrapSend (Send indication)")]
    public int ClientWrapIndication() => _client.WrapSend(OtherPeer, _payload, _output);

    // Brings a client to Allocated with a channel bound to Peer and a permission (no channel) for OtherPeer's IP,
    // answering its requests the way a TURN server does (401 challenge, then authenticated success responses).
    private static TurnClient AllocatedClientWithChannel()
    {
        var client = new TurnClient(new TurnClientOptions { Server = Server, Username = "bench", Password = "bench" });
        using var key = StunKey.LongTerm("bench", "bench.test", "bench");
        var now = TimeSpan.Zero;
        client.Start(now);
        Answer(client, key, now);
        client.BindChannel(Peer, now);
        client.CreatePermission(OtherPeer, now);
        Answer(client, key, now);
        if (client.State != TurnClientState.Allocated || client.GetBoundChannel(Peer) == 0)
            throw new InvalidOperationException("The benchmark client did not reach Allocated with a bound channel.");
        while (client.TryPollEvent(out _)) { }
        return client;
    }

    private static void Answer(TurnClient client, StunKey key, TimeSpan now)
    {
        var request = new byte[1500];
        var response = new byte[1500];
        while (client.TryPollTransmit(request, out var n, out _))
        {
            if (!StunMessage.TryRead(request.AsSpan(0, n), out var m)) throw new InvalidOperationException("bad request");
            int length;
            if (!m.HasMessageIntegrity)
            {
                var w = new StunMessageWriter(response, new StunMessageType(m.Method, StunClass.ErrorResponse), m.TransactionId);
                w.AddErrorCode(401, "Unauthorized");
                w.AddString(StunAttributeType.Realm, "bench.test");
                w.AddString(StunAttributeType.Nonce, "nonce");
                length = w.Length;
            }
            else
            {
                var w = new StunMessageWriter(response, new StunMessageType(m.Method, StunClass.SuccessResponse), m.TransactionId);
                if (m.Method == StunMethod.Allocate)
                {
                    w.AddXorAddress(StunAttributeType.XorRelayedAddress, StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 49999)));
                    w.AddXorAddress(StunAttributeType.XorMappedAddress, StunAddress.FromEndPoint(new IPEndPoint(IPAddress.Loopback, 40000)));
                    w.AddLifetime(600);
                }
                w.AddMessageIntegrity(key);
                length = w.Length;
            }
            client.HandleDatagram(response.AsSpan(0, length), Server, now);
        }
    }
}
