using Transport.Dtls.Handshake;
using Transport.Dtls.Records;

namespace Transport.Dtls.Tests;

public sealed class RecordLayerTests
{
    private static readonly byte[] Key = Convert.FromHexString("000102030405060708090a0b0c0d0e0f");
    private static readonly byte[] Salt = [9, 8, 7, 6];

    [Fact]
    public void GcmRecordRoundTripsAndCarriesHeaderFields()
    {
        using var seal = new AesGcmRecordCipher(Key, Salt);
        using var open = new AesGcmRecordCipher(Key, Salt);
        var payload = new byte[1200];
        Random.Shared.NextBytes(payload);
        var wire = new byte[1300];
        var n = seal.Seal(DtlsContentType.ApplicationData, 1, 0x0000_1234_5678_9ABC & DtlsRecordHeader.MaxSequence, payload, wire);
        Assert.Equal(13 + 8 + 1200 + 16, n);
        Assert.True(DtlsRecordHeader.TryRead(wire.AsSpan(0, n), out var record, out var consumed));
        Assert.Equal(n, consumed);
        Assert.Equal((ushort)1, record.Epoch);
        Assert.Equal(0x1234_5678_9ABCUL, record.Sequence);
        var plain = new byte[1300];
        Assert.True(open.Open(record, plain, out var m));
        Assert.Equal(payload, plain.AsSpan(0, m).ToArray());
    }

    [Fact]
    public void TamperedTagOrHeaderFailsToOpen()
    {
        using var cipher = new AesGcmRecordCipher(Key, Salt);
        var wire = new byte[100];
        var n = cipher.Seal(DtlsContentType.ApplicationData, 1, 5, [1, 2, 3], wire);
        wire[n - 1] ^= 1;
        Assert.True(DtlsRecordHeader.TryRead(wire.AsSpan(0, n), out var r1, out _));
        Assert.False(cipher.Open(r1, new byte[100], out _));
        wire[n - 1] ^= 1;
        wire[10] ^= 1; // sequence number is authenticated data
        Assert.True(DtlsRecordHeader.TryRead(wire.AsSpan(0, n), out var r2, out _));
        Assert.False(cipher.Open(r2, new byte[100], out _));
    }

    [Fact]
    public void ChaChaRecordRoundTrips()
    {
        Assert.True(System.Security.Cryptography.ChaCha20Poly1305.IsSupported);
        var key = new byte[32];
        var iv = new byte[12];
        key[0] = 1; iv[11] = 7;
        using var cipher = new ChaChaRecordCipher(key, iv);
        var wire = new byte[100];
        var n = cipher.Seal(DtlsContentType.ApplicationData, 1, 77, [4, 5, 6], wire);
        Assert.Equal(13 + 3 + 16, n);
        Assert.True(DtlsRecordHeader.TryRead(wire.AsSpan(0, n), out var r, out _));
        var plain = new byte[100];
        Assert.True(cipher.Open(r, plain, out var m));
        Assert.Equal([4, 5, 6], plain.AsSpan(0, m).ToArray());
    }

    [Fact]
    public void ReplayWindowRejectsDuplicatesAndTooOldButAcceptsReordered()
    {
        var w = new Transport.Crypto.ReplayWindow();
        Assert.False(w.IsReplay(100));
        w.Mark(100);
        Assert.True(w.IsReplay(100));
        Assert.False(w.IsReplay(99));
        w.Mark(99);
        Assert.True(w.IsReplay(99));
        Assert.False(w.IsReplay(150));
        w.Mark(150);
        Assert.True(w.IsReplay(150 - 64));
        Assert.False(w.IsReplay(150 - 63));
        w.Mark(1000);
        Assert.True(w.IsReplay(150));
    }

    [Fact]
    public void ReassemblerDeliversInOrderFromOutOfOrderOverlappingAndDuplicatedFragments()
    {
        var body = new byte[500];
        Random.Shared.NextBytes(body);
        var r = new HandshakeReassembler();
        void Add(int seq, int offset, int length)
        {
            var frag = new byte[12 + length];
            HandshakeHeader.Write(frag, DtlsHandshakeType.Certificate, body.Length, seq, offset, length);
            body.AsSpan(offset, length).CopyTo(frag.AsSpan(12));
            Assert.True(HandshakeHeader.TryRead(frag, out var h, out _));
            r.Add(h);
        }
        Add(1, 0, 500);           // next message, whole
        Add(0, 300, 200);
        Add(0, 100, 250);         // overlaps
        Assert.False(r.TryTake(out _));
        Add(0, 100, 250);         // duplicate
        Add(0, 0, 120);
        Assert.True(r.TryTake(out var first));
        Assert.Equal(0, first.Sequence);
        Assert.Equal(body, first.Body);
        Assert.True(r.TryTake(out var second));
        Assert.Equal(1, second.Sequence);
        Assert.False(r.TryTake(out _));
    }

    [Fact]
    public void ReassemblyHoldsAtMostTheHandshakeBufferBeforeAuthentication()
    {
        // Eight 25-byte fragments, each claiming a 32 KiB message (the largest a header may claim): only what fits in
        // DtlsOptions.MaxHandshakeBuffer (64 KiB) is held; the rest is refused (dropped and counted by the connection).
        var r = new HandshakeReassembler();
        var outcomes = new List<FragmentOutcome>();
        for (var seq = 0; seq < 8; seq++)
        {
            var frag = new byte[12 + 13];
            HandshakeHeader.Write(frag, DtlsHandshakeType.Certificate, HandshakeHeader.MaxMessageLength, seq, 0, 13);
            Assert.True(HandshakeHeader.TryRead(frag, out var h, out _));
            outcomes.Add(r.Add(h));
        }
        Assert.Equal(2, outcomes.Count(o => o == FragmentOutcome.Accepted));
        Assert.Equal(DtlsOptions.DefaultMaxHandshakeBuffer, r.BufferedBytes);

        // A whole small message still goes through once the big ones are gone (a new handshake clears them).
        r.Clear();
        var small = new byte[12 + 100];
        HandshakeHeader.Write(small, DtlsHandshakeType.Certificate, 100, 0, 0, 100);
        Assert.True(HandshakeHeader.TryRead(small, out var s, out _));
        Assert.Equal(FragmentOutcome.Accepted, r.Add(s));
        Assert.True(r.TryTake(out var message));
        Assert.Equal(100, message.Body.Length);
        Assert.Equal(0, r.BufferedBytes);
    }
}
