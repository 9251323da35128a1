using System.Buffers.Binary;
using Transport.Rtp.Srtp;

namespace Transport.Rtp.Tests.Srtp;

/// <summary>Byte-for-byte equality with libsrtp 2 (Debian libsrtp2-1) over random packets, across a ROC rollover.</summary>
public class SrtpLibSrtpInteropTests
{
    public static TheoryData<SrtpProfile> Profiles => new()
    {
        SrtpProfile.AesCm128HmacSha1_80,
        SrtpProfile.AesCm128HmacSha1_32,
        SrtpProfile.AeadAes128Gcm,
        SrtpProfile.AeadAes256Gcm,
    };

    private sealed record Keys(byte[] Material, byte[] ClientKey, byte[] ServerKey, byte[] ClientSalt, byte[] ServerSalt);

    private static Keys RandomKeys(SrtpProfile profile, Random random)
    {
        int k = SrtpProfileInfo.MasterKeyLength(profile), s = SrtpProfileInfo.MasterSaltLength(profile);
        byte[] material = new byte[SrtpProfileInfo.KeyingMaterialLength(profile)];
        random.NextBytes(material);
        return new Keys(material, material[..k], material[k..(2 * k)], material[(2 * k)..(2 * k + s)], material[(2 * k + s)..]);
    }

    private static int RandomRtp(Random random, byte[] buffer, ushort sequence, uint ssrc)
    {
        int csrcCount = random.Next(0, 4);
        bool extension = random.Next(3) == 0;
        buffer[0] = (byte)(0x80 | (extension ? 0x10 : 0) | csrcCount);
        buffer[1] = (byte)random.Next(0, 256);
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), sequence);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(4), (uint)random.Next());
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(8), ssrc);
        int offset = 12;
        for (int i = 0; i < csrcCount; i++, offset += 4)
        {
            BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(offset), (uint)random.Next());
        }

        if (extension)
        {
            int words = random.Next(0, 4);
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(offset), 0xBEDE);
            BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(offset + 2), (ushort)words);
            random.NextBytes(buffer.AsSpan(offset + 4, words * 4));
            offset += 4 + words * 4;
        }

        int payload = random.Next(0, 1201);
        random.NextBytes(buffer.AsSpan(offset, payload));
        return offset + payload;
    }

    private static int RandomRtcp(Random random, byte[] buffer, uint ssrc)
    {
        // A receiver report with 0 to 3 report blocks, followed by random words (as an APP packet would carry).
        int blocks = random.Next(0, 4);
        int words = 1 + 6 * blocks;
        buffer[0] = (byte)(0x80 | blocks);
        buffer[1] = 201;
        BinaryPrimitives.WriteUInt16BigEndian(buffer.AsSpan(2), (ushort)words);
        BinaryPrimitives.WriteUInt32BigEndian(buffer.AsSpan(4), ssrc);
        random.NextBytes(buffer.AsSpan(8, 4 * (words - 1)));
        return 4 + 4 * words;
    }

    [Theory]
    [MemberData(nameof(Profiles))]
    public void ProtectedRtpIsByteIdenticalToLibSrtpAcrossRolloverAndBothSidesAccept(SrtpProfile profile)
    {
        var random = new Random((int)profile * 31);
        Keys keys = RandomKeys(profile, random);
        using var ours = SrtpSession.Create(profile, keys.Material, isClient: true);
        using var libSender = new LibSrtp(profile, keys.ClientKey, keys.ClientSalt, outbound: true);
        using var libReceiver = new LibSrtp(profile, keys.ClientKey, keys.ClientSalt, outbound: false);
        using var peerSender = new LibSrtp(profile, keys.ServerKey, keys.ServerSalt, outbound: true);

        const uint ssrc = 0x1234_5678;
        ushort sequence = 65_300;
        byte[] plain = new byte[1600];
        byte[] mine = new byte[1600];
        byte[] theirs = new byte[1600];
        for (int i = 0; i < 400; i++, sequence++)
        {
            int length = RandomRtp(random, plain, sequence, ssrc);
            Array.Copy(plain, mine, length);
            Array.Copy(plain, theirs, length);
            Assert.Equal(SrtpResult.Ok, ours.ProtectRtp(mine, length, out int ourLength));
            int theirLength = libSender.ProtectRtp(theirs, length);
            Assert.True(theirLength > 0, $"libsrtp protect failed: {-theirLength}");
            Assert.Equal(theirs.AsSpan(0, theirLength).ToArray(), mine.AsSpan(0, ourLength).ToArray());

            // libsrtp accepts ours.
            Assert.Equal(length, libReceiver.UnprotectRtp(mine, ourLength));
            Assert.Equal(plain.AsSpan(0, length).ToArray(), mine.AsSpan(0, length).ToArray());

            // We accept libsrtp's packets from the peer direction.
            int peerLength = RandomRtp(random, plain, sequence, ssrc + 1);
            Array.Copy(plain, theirs, peerLength);
            int sent = peerSender.ProtectRtp(theirs, peerLength);
            Assert.True(sent > 0);
            byte[] wire = theirs.AsSpan(0, sent).ToArray();
            Assert.Equal(SrtpResult.Ok, ours.UnprotectRtp(wire, out int plainLength));
            Assert.Equal(plain.AsSpan(0, peerLength).ToArray(), wire.AsSpan(0, plainLength).ToArray());
        }

        Assert.Equal(1u, ours.Outbound.GetRolloverCounter(ssrc));
        Assert.Equal(1u, ours.Inbound.GetRolloverCounter(ssrc + 1));
        Assert.Equal(400, ours.Inbound.Counters.RtpUnprotected);
    }

    [Theory]
    [MemberData(nameof(Profiles))]
    public void ProtectedRtcpIsByteIdenticalToLibSrtpAndBothSidesAccept(SrtpProfile profile)
    {
        var random = new Random((int)profile * 17);
        Keys keys = RandomKeys(profile, random);
        using var ours = SrtpSession.Create(profile, keys.Material, isClient: false);
        using var libSender = new LibSrtp(profile, keys.ServerKey, keys.ServerSalt, outbound: true);
        using var libReceiver = new LibSrtp(profile, keys.ServerKey, keys.ServerSalt, outbound: false);
        using var peerSender = new LibSrtp(profile, keys.ClientKey, keys.ClientSalt, outbound: true);
        const uint ssrc = 0xCAFE_0001;

        // libsrtp numbers SRTCP packets from 1; RFC 3711 section 3.4 starts at 0. Align to compare bytes.
        ours.Outbound.SetNextSrtcpIndex(ssrc, 1);
        byte[] plain = new byte[600];
        byte[] mine = new byte[600];
        byte[] theirs = new byte[600];
        for (int i = 0; i < 100; i++)
        {
            int length = RandomRtcp(random, plain, ssrc);
            Array.Copy(plain, mine, length);
            Array.Copy(plain, theirs, length);
            Assert.Equal(SrtpResult.Ok, ours.ProtectRtcp(mine, length, out int ourLength));
            int theirLength = libSender.ProtectRtcp(theirs, length);
            Assert.True(theirLength > 0, $"libsrtp protect_rtcp failed: {-theirLength}");
            Assert.Equal(theirs.AsSpan(0, theirLength).ToArray(), mine.AsSpan(0, ourLength).ToArray());
            Assert.Equal(length, libReceiver.UnprotectRtcp(mine, ourLength));

            int peerLength = RandomRtcp(random, plain, ssrc + 7);
            Array.Copy(plain, theirs, peerLength);
            int sent = peerSender.ProtectRtcp(theirs, peerLength);
            byte[] wire = theirs.AsSpan(0, sent).ToArray();
            Assert.Equal(SrtpResult.Ok, ours.UnprotectRtcp(wire, out int plainLength));
            Assert.Equal(plain.AsSpan(0, peerLength).ToArray(), wire.AsSpan(0, plainLength).ToArray());
        }
    }

    [Theory]
    [MemberData(nameof(Profiles))]
    public void TamperedAndReplayedPacketsFromLibSrtpAreDroppedAndCounted(SrtpProfile profile)
    {
        var random = new Random(99);
        Keys keys = RandomKeys(profile, random);
        using var ours = SrtpSession.Create(profile, keys.Material, isClient: true);
        using var peerSender = new LibSrtp(profile, keys.ServerKey, keys.ServerSalt, outbound: true);
        byte[] buffer = new byte[1600];
        int tampered = 0;
        for (ushort seq = 10; seq < 60; seq++)
        {
            int length = RandomRtp(random, buffer, seq, 42);
            int sent = peerSender.ProtectRtp(buffer, length);
            byte[] wire = buffer.AsSpan(0, sent).ToArray();
            if (seq % 5 == 0)
            {
                byte[] bad = (byte[])wire.Clone();
                bad[random.Next(0, bad.Length)] ^= (byte)(1 << random.Next(8));
                SrtpResult badResult = ours.UnprotectRtp(bad, out _);
                Assert.True(badResult is SrtpResult.AuthenticationFailed or SrtpResult.Malformed, badResult.ToString());
                tampered++;
            }

            byte[] copy = (byte[])wire.Clone();
            Assert.Equal(SrtpResult.Ok, ours.UnprotectRtp(wire, out _));
            Assert.Equal(SrtpResult.Replayed, ours.UnprotectRtp(copy, out _));
        }

        Assert.Equal(50, ours.Inbound.Counters.RtpUnprotected);
        Assert.Equal(50, ours.Inbound.Counters.Replays);
        Assert.Equal(tampered, ours.Inbound.Counters.AuthenticationFailures + ours.Inbound.Counters.Malformed);
    }
}
