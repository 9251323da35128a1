using System.Buffers.Binary;
using System.Security.Cryptography;
using Transport.Crypto;

namespace Transport.Dtls.Tls13;

/// <summary>
/// DTLS 1.3 protected records (RFC 9147 section 4): the unified header
/// <c>0b001CSLEE | sequence (8 or 16 bits) | length (16 bits, when L)</c>, the encrypted inner plaintext
/// <c>content || type || zeros</c>, AEAD with the header as additional data and the nonce iv XOR the 64-bit
/// record sequence number (the epoch is not part of it), and record-number encryption (section 4.2.3): the
/// sequence bytes XOR AES-ECB(sn_key, first 16 bytes of ciphertext).
/// One instance per epoch and direction; sealing and opening allocate nothing.
/// </summary>
internal sealed class Dtls13RecordCipher : IDisposable
{
    public const int TagLength = 16;
    /// <summary>What we write: C=0, S=1 (16-bit sequence), L=1: 5 header bytes.</summary>
    public const int HeaderLength = 5;
    public const int Overhead = HeaderLength + 1 + TagLength;

    private readonly GcmCipher? _gcm;
    private readonly AesGcm? _aes;
    private readonly AesCounterMode _sn;
    private readonly byte[] _iv;

    public Dtls13RecordCipher(DtlsCipherSuite suite, ulong epoch, ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv, ReadOnlySpan<byte> snKey,
        bool allowIntrinsics = true)
    {
        Suite = suite;
        Epoch = epoch;
        if (allowIntrinsics && GcmCipher.IsSupported) _gcm = new GcmCipher(key);
        else _aes = new AesGcm(key, TagLength);
        _sn = new AesCounterMode(snKey, allowIntrinsics);
        _iv = iv[..12].ToArray();
    }

    public DtlsCipherSuite Suite { get; }
    public ulong Epoch { get; }

    /// <summary>Highest sequence number authenticated in this epoch (for reconstruction), -1 before any.</summary>
    public long HighestReceived { get; set; } = -1;

    public readonly ReplayWindow Window = new();

    /// <summary>Next sequence number to write in this epoch (sequence numbers restart at 0 in each epoch).</summary>
    public ulong NextSequence;

    private void Nonce(Span<byte> nonce, ulong sequence)
    {
        _iv.CopyTo(nonce);
        var tail = BinaryPrimitives.ReadUInt64BigEndian(nonce[4..]) ^ sequence;
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], tail);
    }

    /// <summary>Writes one record of <paramref name="type"/> carrying <paramref name="content"/>; returns its length.</summary>
    public int Seal(DtlsContentType type, ulong sequence, ReadOnlySpan<byte> content, Span<byte> destination)
    {
        var innerLength = content.Length + 1;
        var length = innerLength + TagLength;
        destination[0] = (byte)(0x2C | (int)(Epoch & 3));
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], (ushort)sequence);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], (ushort)length);
        var body = destination.Slice(HeaderLength, innerLength);
        content.CopyTo(body);
        body[^1] = (byte)type;
        Span<byte> nonce = stackalloc byte[12];
        Nonce(nonce, sequence);
        var aad = destination[..HeaderLength];
        var tag = destination.Slice(HeaderLength + innerLength, TagLength);
        if (_gcm is not null) _gcm.Encrypt(nonce, body, tag, aad);
        else _aes!.Encrypt(nonce, body, body, tag, aad);
        Span<byte> mask = stackalloc byte[16];
        _sn.Keystream(destination.Slice(HeaderLength, 16), mask);
        destination[1] ^= mask[0];
        destination[2] ^= mask[1];
        return HeaderLength + length;
    }

    /// <summary>
    /// Opens a record read by <see cref="Dtls13RecordHeader.TryRead"/>: unmasks and reconstructs the sequence number
    /// (closest to the highest received + 1, RFC 9147 4.2.2), authenticates and decrypts into
    /// <paramref name="plaintext"/>, strips the padding. False when it does not authenticate or has no content type.
    /// The caller checks the replay window with <paramref name="sequence"/> before marking it.
    /// </summary>
    public bool Open(in Dtls13RecordHeader record, Span<byte> plaintext, out DtlsContentType type, out int written, out ulong sequence)
    {
        type = default;
        written = 0;
        sequence = 0;
        var ciphertext = record.Ciphertext;
        if (ciphertext.Length < TagLength + 1 || ciphertext.Length < 16 || plaintext.Length < ciphertext.Length - TagLength) return false;
        Span<byte> mask = stackalloc byte[16];
        _sn.Keystream(ciphertext[..16], mask);
        Span<byte> header = stackalloc byte[record.Header.Length];
        record.Header.CopyTo(header);
        ulong low;
        int bits;
        if (record.SequenceLength == 2)
        {
            header[1] ^= mask[0];
            header[2] ^= mask[1];
            low = BinaryPrimitives.ReadUInt16BigEndian(header[1..]);
            bits = 16;
        }
        else
        {
            header[1] ^= mask[0];
            low = header[1];
            bits = 8;
        }
        sequence = Reconstruct(HighestReceived + 1, low, bits);
        Span<byte> nonce = stackalloc byte[12];
        Nonce(nonce, sequence);
        var n = ciphertext.Length - TagLength;
        var output = plaintext[..n];
        if (_gcm is not null)
        {
            if (!_gcm.TryDecrypt(nonce, ciphertext[..n], ciphertext[n..], output, header)) return false;
        }
        else
        {
            if (!AeadOpen.TryDecrypt(_aes!, nonce, ciphertext[..n], ciphertext[n..], output, header)) return false;
        }
        // DTLSInnerPlaintext: content || type || zeros. The type is the last non-zero byte.
        var i = n - 1;
        while (i >= 0 && output[i] == 0) i--;
        if (i < 0) return false;
        type = (DtlsContentType)output[i];
        written = i;
        return true;
    }

    /// <summary>The full sequence number whose low <paramref name="bits"/> are <paramref name="low"/>, closest to <paramref name="expected"/>.</summary>
    internal static ulong Reconstruct(long expected, ulong low, int bits)
    {
        var window = 1L << bits;
        var mask = window - 1;
        var candidate = (expected & ~mask) | (long)low;
        if (candidate - expected > window / 2 && candidate >= window) candidate -= window;
        else if (expected - candidate > window / 2) candidate += window;
        return (ulong)Math.Max(candidate, 0);
    }

    public void Dispose()
    {
        _gcm?.Dispose();
        _aes?.Dispose();
        _sn.Dispose();
    }
}

/// <summary>A unified-header record (RFC 9147 section 4) as read from a datagram, still protected.</summary>
internal readonly ref struct Dtls13RecordHeader
{
    public byte First { get; init; }
    /// <summary>The header bytes as on the wire (sequence still masked).</summary>
    public ReadOnlySpan<byte> Header { get; init; }
    public ReadOnlySpan<byte> Ciphertext { get; init; }
    public int SequenceLength { get; init; }
    public int EpochBits => First & 3;

    /// <summary>True for a first byte of the unified header (0b001xxxxx).</summary>
    public static bool IsUnified(byte first) => (first & 0xE0) == 0x20;

    /// <summary>Reads one unified-header record; false when malformed or when it carries a connection ID (not negotiated).</summary>
    public static bool TryRead(ReadOnlySpan<byte> datagram, out Dtls13RecordHeader record, out int consumed)
    {
        record = default;
        consumed = 0;
        if (datagram.IsEmpty || !IsUnified(datagram[0])) return false;
        var first = datagram[0];
        if ((first & 0x10) != 0) return false; // connection ID: we never negotiate one
        var seqLength = (first & 0x08) != 0 ? 2 : 1;
        var hasLength = (first & 0x04) != 0;
        var headerLength = 1 + seqLength + (hasLength ? 2 : 0);
        if (datagram.Length < headerLength) return false;
        int length;
        if (hasLength)
        {
            length = BinaryPrimitives.ReadUInt16BigEndian(datagram[(1 + seqLength)..]);
            if (length > datagram.Length - headerLength) return false;
        }
        else length = datagram.Length - headerLength;
        consumed = headerLength + length;
        record = new Dtls13RecordHeader
        {
            First = first,
            Header = datagram[..headerLength],
            Ciphertext = datagram.Slice(headerLength, length),
            SequenceLength = seqLength,
        };
        return true;
    }
}
