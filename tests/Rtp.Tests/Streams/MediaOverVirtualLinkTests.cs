using System.Buffers.Binary;
using Transport.Rtp.Payloads;
using Transport.Rtp.Srtp;
using Transport.Rtp.Streams;
using Transport.TestKit;

namespace Transport.Rtp.Tests.Streams;

/// <summary>
/// End to end on virtual time: VP8 frames packetized, SRTP-protected, sent over a lossy link, NACKed by the
/// receiver, retransmitted as RTX, reassembled into frames; then a BYE is reported at once.
/// </summary>
public class MediaOverVirtualLinkTests
{
    private const uint MediaSsrc = 0xAAAA_0001, RtxSsrc = 0xAAAA_0002;
    private const byte MediaPt = 96, RtxPt = 97;

    private sealed class MediaPeer : IVirtualPeer
    {
        private readonly Queue<byte[]> _outgoing = new();
        private readonly byte[] _scratch = new byte[1500];
        private readonly Random _random = new(11);
        private TimeSpan _nextFrame = TimeSpan.FromMilliseconds(1);
        private ushort _sequence = 65300; // crosses the 16-bit wrap (and the SRTP ROC) during the run
        private uint _timestamp;

        public MediaPeer(SrtpSession srtp, bool sender, int frames)
        {
            Srtp = srtp;
            FramesLeft = sender ? frames : 0;
            Session = new RtpSession(new RtpSessionOptions { LocalSsrc = sender ? 1u : 2u });
            if (sender)
            {
                Session.AddSendStream(MediaSsrc, 90_000, new RtxParameters(RtxSsrc, RtxPt));
            }
            else
            {
                Session.AddReceiveStream(MediaSsrc, 90_000);
                Session.AddReceiveRtx(RtxSsrc, MediaSsrc, MediaPt);
            }
        }

        public SrtpSession Srtp { get; }
        public RtpSession Session { get; }
        public RtpFrameAssembler Assembler { get; } = new(new Vp8Depacketizer());
        public int FramesLeft { get; private set; }
        public List<RtpSessionEvent> Events { get; } = new();
        public int Rtx { get; private set; }

        public void HandleDatagram(ReadOnlySpan<byte> datagram, TimeSpan now)
        {
            byte[] buffer = datagram.ToArray();
            if (RtpDemux.IsRtcp(buffer))
            {
                if (Srtp.UnprotectRtcp(buffer, out int n) == SrtpResult.Ok)
                {
                    Session.HandleRtcp(buffer.AsSpan(0, n), now);
                }
            }
            else if (Srtp.UnprotectRtp(buffer, out int n) == SrtpResult.Ok)
            {
                ReadOnlySpan<byte> packet = buffer.AsSpan(0, n);
                if (Session.TryUnwrapRtx(packet, _scratch, out int k))
                {
                    packet = _scratch.AsSpan(0, k);
                    Rtx++;
                }

                Session.HandleRtp(packet, now);
                Assembler.Push(packet);
            }

            DrainEvents();
        }

        public void HandleTimeout(TimeSpan now)
        {
            if (FramesLeft > 0 && now >= _nextFrame)
            {
                SendFrame(now);
            }

            Session.HandleTimeout(now);
            DrainEvents();
        }

        private void SendFrame(TimeSpan now)
        {
            byte[] frame = new byte[2500 + _random.Next(0, 1500)];
            _random.NextBytes(frame);
            var packetizer = new Vp8Packetizer(frame, 1100, (ushort)FramesLeft);
            byte[] payload = new byte[1100];
            while (packetizer.TryWriteNext(payload, out int n, out bool marker))
            {
                byte[] packet = new byte[1200];
                int length = RtpPacketWriter.Write(new RtpHeader(MediaPt, _sequence++, _timestamp, MediaSsrc, marker), payload.AsSpan(0, n), packet);
                Session.OnRtpSent(packet.AsSpan(0, length), now);
                Assert.Equal(SrtpResult.Ok, Srtp.ProtectRtp(packet, length, out int protectedLength));
                _outgoing.Enqueue(packet[..protectedLength]);
            }

            _timestamp += 3000;
            _nextFrame += TimeSpan.FromMilliseconds(33);
            FramesLeft--;
        }

        public bool TryPollTransmit(Span<byte> destination, out int written)
        {
            if (_outgoing.TryDequeue(out byte[]? packet))
            {
                packet.CopyTo(destination);
                written = packet.Length;
                return true;
            }

            if (Session.TryPollTransmit(_scratch, out int n, out RtpTransmitKind kind))
            {
                _scratch.AsSpan(0, n).CopyTo(destination);
                SrtpResult result = kind == RtpTransmitKind.Rtcp
                    ? Srtp.ProtectRtcp(destination, n, out written)
                    : Srtp.ProtectRtp(destination, n, out written);
                Assert.Equal(SrtpResult.Ok, result);
                return true;
            }

            written = 0;
            return false;
        }

        public TimeSpan? PollTimeout()
        {
            TimeSpan? session = Session.PollTimeout();
            if (FramesLeft > 0 && (session is null || _nextFrame < session))
            {
                return _nextFrame;
            }

            return session;
        }

        private void DrainEvents()
        {
            while (Session.TryPollEvent(out RtpSessionEvent? e))
            {
                Events.Add(e!);
            }
        }
    }

    [Fact]
    public void LostPacketsAreRecoveredByNackAndRtxSoFramesCompleteAndByeIsReportedAtOnce()
    {
        byte[] material = Enumerable.Range(0, 60).Select(i => (byte)(i * 7)).ToArray();
        using var senderSrtp = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, material, isClient: true);
        using var receiverSrtp = SrtpSession.Create(SrtpProfile.AesCm128HmacSha1_80, material, isClient: false);
        var sender = new MediaPeer(senderSrtp, sender: true, frames: 150);
        var receiver = new MediaPeer(receiverSrtp, sender: false, frames: 0);
        var link = new VirtualLink(seed: 3,
            aToB: new LinkConditions { Delay = TimeSpan.FromMilliseconds(20), Loss = 0.05, Jitter = TimeSpan.FromMilliseconds(3) },
            bToA: new LinkConditions { Delay = TimeSpan.FromMilliseconds(20) });
        var driver = new TwoPeerDriver(sender, receiver, link);

        driver.RunFor(TimeSpan.FromSeconds(6));

        Assert.True(link.Dropped > 10, $"the link should have lost packets, lost {link.Dropped}");
        Assert.Equal(0, sender.FramesLeft);
        Assert.True(receiver.Assembler.CompleteFrames >= 148,
            $"complete {receiver.Assembler.CompleteFrames}, incomplete {receiver.Assembler.IncompleteFrames}");
        Assert.Contains(sender.Events, e => e is NackReceived { Retransmitting: > 0 });
        Assert.True(receiver.Rtx > 0);
        Assert.Contains(sender.Events, e => e is RoundTripTimeMeasured { RoundTripTime.TotalMilliseconds: > 35 and < 60 });
        Assert.Equal(1u, receiverSrtp.Inbound.GetRolloverCounter(MediaSsrc));
        ReceiveStatistics stats = receiver.Session.GetReceiveStatistics(MediaSsrc)!;
        Assert.True(stats.CumulativeLost <= 0, $"retransmissions fill the losses, lost {stats.CumulativeLost}");

        byte[] frame = new byte[8000];
        int frames = 0;
        while (receiver.Assembler.TryPollFrame(frame, out RtpFrameInfo info))
        {
            frames += info.Complete ? 1 : 0;
        }

        Assert.Equal(receiver.Assembler.CompleteFrames, frames);

        // BYE: reported on arrival, not after a timeout.
        sender.Session.SendBye("done");
        TimeSpan sentAt = driver.Now;
        Assert.True(driver.RunUntil(() => receiver.Events.Any(e => e is ByeReceived { Ssrc: MediaSsrc, Reason: "done" }), TimeSpan.FromSeconds(1)));
        Assert.True(driver.Now - sentAt <= TimeSpan.FromMilliseconds(25));
    }
}
