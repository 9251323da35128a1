using System.Buffers.Binary;
using System.Security.Cryptography;
using Transport.Crypto;

namespace Transport.Dtls.Records;

/// <summary>
/// AEAD protection of the records of one epoch in one direction (RFC 5246 section 6.2.3.3, RFC 6347 section 4.1.2.1).
/// One instance per epoch and direction holds its AEAD object, so protecting a record allocates nothing.
/// The additional data is seq_num (epoch + 48-bit sequence) + type + version + plaintext length (13 bytes).
/// </summary>
internal abstract class RecordCipher : IDisposable
{
    public const int TagLength = 16;

    /// <summary>Bytes a record grows by: explicit nonce (GCM only) and tag.</summary>
    public abstract int Overhead { get; }

    /// <summary>
    /// Writes the record (header and protected fragment) for <paramref name="plaintext"/> into
    /// <paramref name="destination"/>; returns its length.
    /// </summary>
    public abstract int Seal(DtlsContentType type, ushort epoch, ulong sequence, ReadOnlySpan<byte> plaintext, Span<byte> destination);

    /// <summary>
    /// Authenticates and decrypts the fragment of <paramref name="record"/> into <paramref name="plaintext"/>.
    /// False (and nothing thrown) when the record is too short or its tag does not verify.
    /// </summary>
    public abstract bool Open(in DtlsRecordHeader record, Span<byte> plaintext, out int written);

    public abstract void Dispose();

    protected static void WriteAdditionalData(Span<byte> aad, DtlsContentType type, ushort epoch, ulong sequence, ushort version, int length)
    {
        BinaryPrimitives.WriteUInt16BigEndian(aad, epoch);
        DtlsRecordHeader.WriteUInt48(aad[2..], sequence);
        aad[8] = (byte)type;
        BinaryPrimitives.WriteUInt16BigEndian(aad[9..], version);
        BinaryPrimitives.WriteUInt16BigEndian(aad[11..], (ushort)length);
    }

    /// <summary>The cipher of <paramref name="suite"/>; <paramref name="allowIntrinsics"/> false forces the platform AesGcm (tests).</summary>
    public static RecordCipher Create(DtlsCipherSuite suite, ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv, bool allowIntrinsics = true) => suite switch
    {
        DtlsCipherSuite.EcdheEcdsaWithChaCha20Poly1305Sha256 => new ChaChaRecordCipher(key, iv),
        _ => new AesGcmRecordCipher(key, iv, allowIntrinsics),
    };
}

/// <summary>
/// AES-GCM records (RFC 5288 section 3): nonce = 4-byte salt from the key block + 8-byte explicit nonce sent in
/// the record. The explicit nonce is epoch + sequence, unique per key as RFC 5288 requires.
/// <para>
/// Engine: our AES-NI + PCLMULQDQ GCM (<see cref="GcmCipher"/>, the kernel the SRTP AEAD profiles use, shared
/// source) whenever the CPU has the instructions. It costs about half of the platform <see cref="AesGcm"/> for a
/// 1200-byte record here (no P/Invoke and EVP round trip per record) and reports a bad tag by returning false
/// instead of throwing, so a forged record costs the same as a genuine one. Otherwise (or with
/// <c>allowIntrinsics</c> false) the platform <see cref="AesGcm"/>, with its tag-mismatch exception contained.
/// Both produce identical records (tested).
/// </para>
/// </summary>
internal sealed class AesGcmRecordCipher : RecordCipher
{
    private const int ExplicitNonceLength = 8;
    private readonly AesGcm? _aes;
    private readonly GcmCipher? _gcm;
    private readonly byte[] _salt;

    public AesGcmRecordCipher(ReadOnlySpan<byte> key, ReadOnlySpan<byte> salt, bool allowIntrinsics = true)
    {
        if (allowIntrinsics && GcmCipher.IsSupported)
        {
            _gcm = new GcmCipher(key);
        }
        else
        {
            _aes = new AesGcm(key, TagLength);
        }

        _salt = salt[..4].ToArray();
    }

    /// <summary>True when records run on <see cref="GcmCipher"/> (AES-NI + PCLMULQDQ), false on the platform AesGcm.</summary>
    public bool UsesIntrinsics => _gcm is not null;

    public override int Overhead => ExplicitNonceLength + TagLength;

    public override int Seal(DtlsContentType type, ushort epoch, ulong sequence, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        var fragmentLength = ExplicitNonceLength + plaintext.Length + TagLength;
        DtlsRecordHeader.Write(destination, type, epoch, sequence, fragmentLength);
        var explicitNonce = destination.Slice(DtlsRecordHeader.Length, ExplicitNonceLength);
        BinaryPrimitives.WriteUInt16BigEndian(explicitNonce, epoch);
        DtlsRecordHeader.WriteUInt48(explicitNonce[2..], sequence);
        Span<byte> nonce = stackalloc byte[12];
        _salt.CopyTo(nonce);
        explicitNonce.CopyTo(nonce[4..]);
        Span<byte> aad = stackalloc byte[13];
        WriteAdditionalData(aad, type, epoch, sequence, DtlsRecordHeader.Version12, plaintext.Length);
        var body = destination.Slice(DtlsRecordHeader.Length + ExplicitNonceLength, plaintext.Length);
        var tag = destination.Slice(DtlsRecordHeader.Length + ExplicitNonceLength + plaintext.Length, TagLength);
        if (_gcm is not null) _gcm.Encrypt(nonce, plaintext, body, tag, aad);
        else _aes!.Encrypt(nonce, plaintext, body, tag, aad);
        return DtlsRecordHeader.Length + fragmentLength;
    }

    public override bool Open(in DtlsRecordHeader record, Span<byte> plaintext, out int written)
    {
        written = 0;
        var fragment = record.Fragment;
        var length = fragment.Length - ExplicitNonceLength - TagLength;
        if (length < 0 || plaintext.Length < length) return false;
        Span<byte> nonce = stackalloc byte[12];
        _salt.CopyTo(nonce);
        fragment[..ExplicitNonceLength].CopyTo(nonce[4..]);
        Span<byte> aad = stackalloc byte[13];
        WriteAdditionalData(aad, record.Type, record.Epoch, record.Sequence, record.Version, length);
        var ciphertext = fragment.Slice(ExplicitNonceLength, length);
        if (_gcm is not null)
        {
            // Constant-time tag check; nothing is written to plaintext unless it verifies.
            if (!_gcm.TryDecrypt(nonce, ciphertext, fragment[^TagLength..], plaintext[..length], aad)) return false;
        }
        else
        {
            // Unauthenticated input is dropped and counted by the caller; it is not an error of ours (no exception).
            if (!AeadOpen.TryDecrypt(_aes!, nonce, ciphertext, fragment[^TagLength..], plaintext[..length], aad)) return false;
        }
        written = length;
        return true;
    }

    public override void Dispose()
    {
        _aes?.Dispose();
        _gcm?.Dispose();
    }
}

/// <summary>
/// ChaCha20-Poly1305 records (RFC 7905 section 2): no explicit nonce; nonce = IV XOR (epoch + sequence) left-padded.
/// </summary>
internal sealed class ChaChaRecordCipher : RecordCipher
{
    private readonly ChaCha20Poly1305 _aead;
    private readonly byte[] _iv;

    public ChaChaRecordCipher(ReadOnlySpan<byte> key, ReadOnlySpan<byte> iv)
    {
        _aead = new ChaCha20Poly1305(key);
        _iv = iv[..12].ToArray();
    }

    public override int Overhead => TagLength;

    private void Nonce(Span<byte> nonce, ushort epoch, ulong sequence)
    {
        _iv.CopyTo(nonce);
        var seq = ((ulong)epoch << 48) | sequence;
        var tail = BinaryPrimitives.ReadUInt64BigEndian(nonce[4..]) ^ seq;
        BinaryPrimitives.WriteUInt64BigEndian(nonce[4..], tail);
    }

    public override int Seal(DtlsContentType type, ushort epoch, ulong sequence, ReadOnlySpan<byte> plaintext, Span<byte> destination)
    {
        var fragmentLength = plaintext.Length + TagLength;
        DtlsRecordHeader.Write(destination, type, epoch, sequence, fragmentLength);
        Span<byte> nonce = stackalloc byte[12];
        Nonce(nonce, epoch, sequence);
        Span<byte> aad = stackalloc byte[13];
        WriteAdditionalData(aad, type, epoch, sequence, DtlsRecordHeader.Version12, plaintext.Length);
        _aead.Encrypt(nonce, plaintext, destination.Slice(DtlsRecordHeader.Length, plaintext.Length),
            destination.Slice(DtlsRecordHeader.Length + plaintext.Length, TagLength), aad);
        return DtlsRecordHeader.Length + fragmentLength;
    }

    public override bool Open(in DtlsRecordHeader record, Span<byte> plaintext, out int written)
    {
        written = 0;
        var fragment = record.Fragment;
        var length = fragment.Length - TagLength;
        if (length < 0 || plaintext.Length < length) return false;
        Span<byte> nonce = stackalloc byte[12];
        Nonce(nonce, record.Epoch, record.Sequence);
        Span<byte> aad = stackalloc byte[13];
        WriteAdditionalData(aad, record.Type, record.Epoch, record.Sequence, record.Version, length);
        if (!AeadOpen.TryDecrypt(_aead, nonce, fragment[..length], fragment[^TagLength..], plaintext[..length], aad)) return false;
        written = length;
        return true;
    }

    public override void Dispose() => _aead.Dispose();
}
