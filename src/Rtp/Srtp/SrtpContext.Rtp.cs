using System.Buffers.Binary;
using System.Security.Cryptography;

using Transport.Crypto;

namespace Transport.Rtp.Srtp;

// SRTP packet format (RFC 3711 section 3.1):
//   | RTP header | encrypted payload | [MKI] | authentication tag |
// AEAD profiles (RFC 7714 section 8): | RTP header (AAD) | ciphertext | 16-byte tag | [MKI] |
public sealed partial class SrtpContext
{
    /// <summary>
    /// Protects the RTP packet held in the first <paramref name="length"/> bytes of <paramref name="buffer"/> in
    /// place; the tag (and MKI) are appended, so the buffer needs <see cref="SrtpProfileInfo.RtpOverhead"/> spare bytes.
    /// </summary>
    public SrtpResult ProtectRtp(Span<byte> buffer, int length, out int protectedLength)
    {
        protectedLength = 0;
        if ((uint)length > (uint)buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }

        Span<byte> packet = buffer.Slice(0, length);
        int headerLength = RtpHeaderSize(packet);
        if (headerLength < 0)
        {
            return Counters.Count(SrtpResult.Malformed);
        }

        int total = length + _rtpTagLength + _mki.Length;
        if (total > buffer.Length)
        {
            return SrtpResult.BufferTooSmall;
        }

        uint ssrc = BinaryPrimitives.ReadUInt32BigEndian(packet.Slice(8));
        ushort sequence = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(2));
        SrtpStream? stream = GetOrCreateStream(ssrc);
        if (stream is null)
        {
            return Counters.Count(SrtpResult.TooManyStreams);
        }

        ulong index = stream.EstimateIndex(sequence);
        uint roc = (uint)(index >> 16);
        if (_aead)
        {
            Span<byte> nonce = stackalloc byte[12];
            RtpNonce(nonce, ssrc, roc, sequence);
            GcmSeal(_rtpGcmCipher, _rtpGcm!, nonce, packet.Slice(headerLength), buffer.Slice(length, GcmTagLength), packet.Slice(0, headerLength));
            _mki.CopyTo(buffer.Slice(length + GcmTagLength));
        }
        else
        {
            Span<byte> iv = stackalloc byte[16];
            CounterIv(iv, _rtpSalt, ssrc, index);
            _rtpCipher!.Transform(iv, packet.Slice(headerLength));

            // The authenticated message is header || ciphertext || ROC (RFC 3711 section 4.2). The ROC is written
            // where the trailer goes so that the MAC runs over one contiguous span.
            BinaryPrimitives.WriteUInt32BigEndian(buffer.Slice(length), roc);
            Span<byte> tag = stackalloc byte[_rtpTagLength];
            ComputeHmac(_rtpMac!, buffer.Slice(0, length + 4), tag);
            _mki.CopyTo(buffer.Slice(length));
            tag.CopyTo(buffer.Slice(length + _mki.Length));
        }

        stream.AdvanceRtp(index);
        Counters.RtpProtected++;
        protectedLength = total;
        return SrtpResult.Ok;
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> and protects it there.</summary>
    public SrtpResult ProtectRtp(ReadOnlySpan<byte> source, Span<byte> destination, out int protectedLength)
    {
        protectedLength = 0;
        if (source.Length > destination.Length)
        {
            return SrtpResult.BufferTooSmall;
        }

        source.CopyTo(destination);
        return ProtectRtp(destination, source.Length, out protectedLength);
    }

    /// <summary>
    /// Verifies and decrypts the SRTP packet <paramref name="packet"/> in place. On <see cref="SrtpResult.Ok"/> the
    /// plain RTP packet is the first <paramref name="plainLength"/> bytes; on any other result the packet must be
    /// dropped (its bytes may have been altered).
    /// </summary>
    public SrtpResult UnprotectRtp(Span<byte> packet, out int plainLength)
    {
        plainLength = 0;
        int headerLength = RtpHeaderSize(packet);
        int trailer = _rtpTagLength + _mki.Length;
        if (headerLength < 0 || packet.Length < headerLength + trailer)
        {
            return Counters.Count(SrtpResult.Malformed);
        }

        int bodyEnd = packet.Length - trailer;
        if (_mki.Length > 0)
        {
            int mkiOffset = _aead ? packet.Length - _mki.Length : bodyEnd;
            if (!packet.Slice(mkiOffset, _mki.Length).SequenceEqual(_mki))
            {
                return Counters.Count(SrtpResult.MkiMismatch);
            }
        }

        uint ssrc = BinaryPrimitives.ReadUInt32BigEndian(packet.Slice(8));
        ushort sequence = BinaryPrimitives.ReadUInt16BigEndian(packet.Slice(2));
        SrtpStream? stream = FindStream(ssrc);
        ulong index = stream?.EstimateIndex(sequence) ?? sequence;
        if (stream?.RtpReplay is { } replay)
        {
            SrtpResult check = ToResult(replay.Check(index));
            if (check != SrtpResult.Ok)
            {
                return Counters.Count(check);
            }
        }

        uint roc = (uint)(index >> 16);
        if (_aead)
        {
            Span<byte> nonce = stackalloc byte[12];
            RtpNonce(nonce, ssrc, roc, sequence);
            Span<byte> ciphertext = packet.Slice(headerLength, bodyEnd - headerLength);
            if (!GcmOpen(_rtpGcmCipher, _rtpGcm!, nonce, ciphertext, packet.Slice(bodyEnd, GcmTagLength), packet.Slice(0, headerLength)))
            {
                return Counters.Count(SrtpResult.AuthenticationFailed);
            }
        }
        else
        {
            Span<byte> received = stackalloc byte[_rtpTagLength];
            packet.Slice(packet.Length - _rtpTagLength).CopyTo(received);
            Span<byte> saved = stackalloc byte[4];
            packet.Slice(bodyEnd, 4).CopyTo(saved);
            BinaryPrimitives.WriteUInt32BigEndian(packet.Slice(bodyEnd), roc);
            Span<byte> computed = stackalloc byte[_rtpTagLength];
            ComputeHmac(_rtpMac!, packet.Slice(0, bodyEnd + 4), computed);
            saved.CopyTo(packet.Slice(bodyEnd));
            if (!CryptographicOperations.FixedTimeEquals(computed, received))
            {
                return Counters.Count(SrtpResult.AuthenticationFailed);
            }

            Span<byte> iv = stackalloc byte[16];
            CounterIv(iv, _rtpSalt, ssrc, index);
            _rtpCipher!.Transform(iv, packet.Slice(headerLength, bodyEnd - headerLength));
        }

        if (stream is null)
        {
            // Per-SSRC state is created only for authenticated packets, so forged SSRCs cost no memory.
            stream = GetOrCreateStream(ssrc);
            if (stream is null)
            {
                return Counters.Count(SrtpResult.TooManyStreams);
            }
        }

        stream.RtpReplay ??= new ReplayWindow(_options.ReplayWindowSize);
        stream.RtpReplay.Mark(index);
        stream.AdvanceRtp(index);
        Counters.RtpUnprotected++;
        plainLength = bodyEnd;
        return SrtpResult.Ok;
    }

    /// <summary>Encrypts in place and writes the tag, with our kernel when available, else AesGcm.</summary>
    private static void GcmSeal(GcmCipher? cipher, AesGcm gcm, ReadOnlySpan<byte> nonce, Span<byte> data, Span<byte> tag, ReadOnlySpan<byte> aad)
    {
        if (cipher is not null)
        {
            cipher.Encrypt(nonce, data, tag, aad);
        }
        else
        {
            gcm.Encrypt(nonce, data, data, tag, aad);
        }
    }

    /// <summary>
    /// Verifies and decrypts in place: our GHASH with a constant-time tag comparison when available, else the
    /// platform AesGcm checked without its tag-mismatch exception (<see cref="AeadOpen"/>).
    /// </summary>
    private static bool GcmOpen(GcmCipher? decryptor, AesGcm gcm, ReadOnlySpan<byte> nonce, Span<byte> ciphertext,
        ReadOnlySpan<byte> tag, ReadOnlySpan<byte> aad)
    {
        if (decryptor is not null)
        {
            return decryptor.TryDecrypt(nonce, ciphertext, tag, aad);
        }

        return AeadOpen.TryDecrypt(gcm, nonce, ciphertext, tag, ciphertext, aad);
    }

    /// <summary>AES-CM counter block (RFC 3711 section 4.1.1): (salt * 2^16) XOR (SSRC * 2^64) XOR (index * 2^16).</summary>
    private static void CounterIv(Span<byte> iv, ReadOnlySpan<byte> salt, uint ssrc, ulong index)
    {
        salt.CopyTo(iv);
        iv[14] = 0;
        iv[15] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(iv.Slice(4), BinaryPrimitives.ReadUInt32BigEndian(iv.Slice(4)) ^ ssrc);
        BinaryPrimitives.WriteUInt16BigEndian(iv.Slice(8), (ushort)(BinaryPrimitives.ReadUInt16BigEndian(iv.Slice(8)) ^ (ushort)(index >> 32)));
        BinaryPrimitives.WriteUInt32BigEndian(iv.Slice(10), BinaryPrimitives.ReadUInt32BigEndian(iv.Slice(10)) ^ (uint)index);
    }

    /// <summary>GCM nonce for SRTP (RFC 7714 section 8.1): (0x0000 || SSRC || ROC || SEQ) XOR salt.</summary>
    private void RtpNonce(Span<byte> nonce, uint ssrc, uint roc, ushort sequence)
    {
        nonce[0] = 0;
        nonce[1] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(nonce.Slice(2), ssrc);
        BinaryPrimitives.WriteUInt32BigEndian(nonce.Slice(6), roc);
        BinaryPrimitives.WriteUInt16BigEndian(nonce.Slice(10), sequence);
        XorSalt(nonce, _rtpSalt);
    }

    private static void XorSalt(Span<byte> nonce, ReadOnlySpan<byte> salt)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(nonce, BinaryPrimitives.ReadUInt64LittleEndian(nonce) ^ BinaryPrimitives.ReadUInt64LittleEndian(salt));
        BinaryPrimitives.WriteUInt32LittleEndian(nonce.Slice(8),
            BinaryPrimitives.ReadUInt32LittleEndian(nonce.Slice(8)) ^ BinaryPrimitives.ReadUInt32LittleEndian(salt.Slice(8)));
    }
}
