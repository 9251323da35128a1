using Transport.Dtls.Tls13;

namespace Transport.Dtls.Tests;

/// <summary>DTLS 1.3 records (RFC 9147 section 4) with fixed keys.</summary>
public sealed class Dtls13RecordTests
{
    private static readonly byte[] Key = Convert.FromHexString("000102030405060708090a0b0c0d0e0f");
    private static readonly byte[] Iv = Convert.FromHexString("a0a1a2a3a4a5a6a7a8a9aaab");
    private static readonly byte[] SnKey = Convert.FromHexString("f0e0d0c0b0a090807060504030201000");

    private static Dtls13RecordCipher Cipher(ulong epoch = 3, bool intrinsics = true, byte[]? key = null) =>
        new(DtlsCipherSuite.TlsAes128GcmSha256, epoch, key ?? Key, Iv, SnKey, intrinsics);

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100)]
    [InlineData(1200)]
    public void SealThenOpenRoundTripsWithTheUnifiedHeader(int size)
    {
        using var tx = Cipher();
        using var rx = Cipher();
        var content = new byte[size];
        new Random(size).NextBytes(content);
        var record = new byte[size + Dtls13RecordCipher.Overhead];
        var n = tx.Seal(DtlsContentType.ApplicationData, 5, content, record);
        Assert.Equal(record.Length, n);
        // 0b001CSLEE: no connection ID, 16-bit sequence, length present, epoch 3 -> 0x2F.
        Assert.Equal(0x2F, record[0]);
        Assert.Equal(size + 1 + 16, (record[3] << 8) | record[4]);
        Assert.True(Dtls13RecordHeader.TryRead(record, out var header, out var consumed));
        Assert.Equal(n, consumed);
        var plain = new byte[2048];
        Assert.True(rx.Open(header, plain, out var type, out var written, out var seq));
        Assert.Equal(DtlsContentType.ApplicationData, type);
        Assert.Equal(5UL, seq);
        Assert.Equal(content, plain.AsSpan(0, written).ToArray());
    }

    [Fact]
    public void SequenceNumberIsEncryptedOnTheWire()
    {
        using var tx = Cipher();
        var record = new byte[64];
        var seen = new HashSet<int>();
        for (ulong s = 0; s < 16; s++)
        {
            tx.Seal(DtlsContentType.ApplicationData, s, "same content"u8, record);
            seen.Add((record[1] << 8) | record[2]);
        }
        // Sixteen records numbered 0..15: the wire values are masked, not 0..15 in order.
        Assert.NotEqual(Enumerable.Range(0, 16).ToHashSet(), seen);
        Assert.True(seen.Count >= 15);
    }

    [Fact]
    public void PlatformAndIntrinsicEnginesProduceTheSameRecords()
    {
        using var a = Cipher(intrinsics: true);
        using var b = Cipher(intrinsics: false);
        var ra = new byte[300];
        var rb = new byte[300];
        var content = Enumerable.Range(0, 200).Select(i => (byte)i).ToArray();
        a.Seal(DtlsContentType.Handshake, 77, content, ra);
        b.Seal(DtlsContentType.Handshake, 77, content, rb);
        Assert.Equal(ra, rb);
    }

    [Fact]
    public void AnyFlippedBitFailsToOpen()
    {
        using var tx = Cipher();
        var record = new byte[100 + Dtls13RecordCipher.Overhead];
        var n = tx.Seal(DtlsContentType.ApplicationData, 9, new byte[100], record);
        var plain = new byte[2048];
        for (var i = 0; i < n; i++)
        {
            using var rx = Cipher();
            var copy = (byte[])record.Clone();
            copy[i] ^= 0x10;
            if (!Dtls13RecordHeader.TryRead(copy, out var header, out _)) continue; // header bits that make it unreadable
            Assert.False(rx.Open(header, plain, out _, out _, out _), $"byte {i}");
        }
        using var other = Cipher(key: Convert.FromHexString("ff0102030405060708090a0b0c0d0e0f"));
        Assert.True(Dtls13RecordHeader.TryRead(record, out var h, out _));
        Assert.False(other.Open(h, plain, out _, out _, out _));
    }

    [Theory]
    [InlineData(0L, 0UL, 16, 0UL)]
    [InlineData(65535L, 0UL, 16, 65536UL)]
    [InlineData(65536L, 65535UL, 16, 65535UL)]
    [InlineData(100000L, 100000UL & 0xFFFF, 16, 100000UL)]
    [InlineData(300L, 40UL, 8, 296UL)]
    [InlineData(250L, 2UL, 8, 258UL)]
    public void SequenceReconstructionPicksTheClosestValue(long expected, ulong low, int bits, ulong full) =>
        Assert.Equal(full, Dtls13RecordCipher.Reconstruct(expected, low, bits));

    [Fact]
    public void ReconstructionAcrossTheSixteenBitBoundaryOpens()
    {
        using var tx = Cipher();
        using var rx = Cipher();
        var record = new byte[64];
        var plain = new byte[64];
        rx.HighestReceived = 65530;
        var n = tx.Seal(DtlsContentType.ApplicationData, 65540, "x"u8, record);
        Assert.True(Dtls13RecordHeader.TryRead(record.AsSpan(0, n), out var h, out _));
        Assert.True(rx.Open(h, plain, out _, out _, out var seq));
        Assert.Equal(65540UL, seq);
    }

    [Fact]
    public void HeaderWithConnectionIdOrBadLengthIsRejected()
    {
        Assert.False(Dtls13RecordHeader.TryRead([0x3C, 0, 0, 0, 1], out _, out _)); // C bit
        Assert.False(Dtls13RecordHeader.TryRead([0x2C, 0, 0, 0, 9, 1, 2], out _, out _)); // length overruns
        Assert.False(Dtls13RecordHeader.TryRead([0x16, 0xFE, 0xFD], out _, out _)); // DTLSPlaintext, not unified
        // No length: the record runs to the end of the datagram; 8-bit sequence.
        Assert.True(Dtls13RecordHeader.TryRead([0x22, 7, 1, 2, 3], out var h, out var consumed));
        Assert.Equal(5, consumed);
        Assert.Equal(1, h.SequenceLength);
        Assert.Equal(3, h.Ciphertext.Length);
    }

    [Fact]
    public void ReplayWindowRejectsDuplicatesAndTooOld()
    {
        var w = new Transport.Crypto.ReplayWindow();
        Assert.False(w.IsReplay(10));
        w.Mark(10);
        Assert.True(w.IsReplay(10));
        w.Mark(100);
        Assert.True(w.IsReplay(36));
        Assert.False(w.IsReplay(37));
        Assert.False(w.IsReplay(101));
    }
}
