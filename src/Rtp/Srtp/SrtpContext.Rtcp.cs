using System.Buffers.Binary;
using System.Security.Cryptography;

using Transport.Crypto;

namespace Transport.Rtp.Srtp;

// SRTCP packet format (RFC 3711 section 3.4):
//   | RTCP header (8) | encrypted part | E | SRTCP index (31) | [MKI] | authentication tag |
// AEAD profiles (RFC 7714 section 9): | header (8) | ciphertext | 16-byte tag | E | SRTCP index | [MKI] |
// with AAD = header || E+index (E=1) or the whole packet || E+index (E=0, nothing encrypted).
public sealed partial class SrtpContext
{
    private const uint EncryptedFlag = 0x8000_0000;
    private const uint MaxSrtcpIndex = 0x7FFF_FFFF;

    /// <summary>
    /// Protects the compound RTCP packet held in the first <paramref name="length"/> bytes of
    /// <paramref name="buffer"/> in place, appending the SRTCP index, MKI and tag
    /// (<see cref="SrtpProfileInfo.RtcpOverhead"/> spare bytes needed). The SSRC is the sender SSRC of the first packet.
    /// </summary>
    public SrtpResult ProtectRtcp(Span<byte> buffer, int length, out int protectedLength)
    {
        protectedLength = 0;
        if ((uint)length > (uint)buffer.Length)
        {
            throw new ArgumentOutOfRangeException(nameof(length));
        }

        if (length < RtcpHeaderLength || (buffer[0] >> 6) != 2)
        {
            return Counters.Count(SrtpResult.Malformed);
        }

        int total = length + 4 + _rtcpTagLength + _mki.Length;
        if (total > buffer.Length)
        {
            return SrtpResult.BufferTooSmall;
        }

        uint ssrc = BinaryPrimitives.ReadUInt32BigEndian(buffer.Slice(4));
        SrtpStream? stream = GetOrCreateStream(ssrc);
        if (stream is null)
        {
            return Counters.Count(SrtpResult.TooManyStreams);
        }

        uint index = stream.NextSrtcpIndex;
        if (index > MaxSrtcpIndex)
        {
            return SrtpResult.KeyExhausted;
        }

        bool encrypt = _options.EncryptRtcp;
        uint word = encrypt ? EncryptedFlag | index : index;
        if (_aead)
        {
            Span<byte> nonce = stackalloc byte[12];
            RtcpNonce(nonce, ssrc, index);
            if (encrypt)
            {
                Span<byte> aad = stackalloc byte[RtcpHeaderLength + 4];
                buffer.Slice(0, RtcpHeaderLength).CopyTo(aad);
                BinaryPrimitives.WriteUInt32BigEndian(aad.Slice(RtcpHeaderLength), word);
                Span<byte> body = buffer.Slice(RtcpHeaderLength, length - RtcpHeaderLength);
                GcmSeal(_rtcpGcmCipher, _rtcpGcm!, nonce, body, buffer.Slice(length, GcmTagLength), aad);
            }
            else
            {
                // E=0: the whole packet and the index word are AAD; the tag authenticates an empty plaintext.
                BinaryPrimitives.WriteUInt32BigEndian(buffer.Slice(length), word);
                Span<byte> tag = stackalloc byte[GcmTagLength];
                GcmSeal(_rtcpGcmCipher, _rtcpGcm!, nonce, Span<byte>.Empty, tag, buffer.Slice(0, length + 4));
                tag.CopyTo(buffer.Slice(length));
            }

            BinaryPrimitives.WriteUInt32BigEndian(buffer.Slice(length + GcmTagLength), word);
            _mki.CopyTo(buffer.Slice(length + GcmTagLength + 4));
        }
        else
        {
            if (encrypt)
            {
                Span<byte> iv = stackalloc byte[16];
                CounterIv(iv, _rtcpSalt, ssrc, index);
                _rtcpCipher!.Transform(iv, buffer.Slice(RtcpHeaderLength, length - RtcpHeaderLength));
            }

            BinaryPrimitives.WriteUInt32BigEndian(buffer.Slice(length), word);
            Span<byte> tag = stackalloc byte[_rtcpTagLength];
            ComputeHmac(_rtcpMac!, buffer.Slice(0, length + 4), tag);
            _mki.CopyTo(buffer.Slice(length + 4));
            tag.CopyTo(buffer.Slice(length + 4 + _mki.Length));
        }

        stream.NextSrtcpIndex = index + 1;
        Counters.RtcpProtected++;
        protectedLength = total;
        return SrtpResult.Ok;
    }

    /// <summary>Copies <paramref name="source"/> into <paramref name="destination"/> and protects it there.</summary>
    public SrtpResult ProtectRtcp(ReadOnlySpan<byte> source, Span<byte> destination, out int protectedLength)
    {
        protectedLength = 0;
        if (source.Length > destination.Length)
        {
            return SrtpResult.BufferTooSmall;
        }

        source.CopyTo(destination);
        return ProtectRtcp(destination, source.Length, out protectedLength);
    }

    /// <summary>
    /// Verifies and (when the E bit is set) decrypts the SRTCP packet in place. On <see cref="SrtpResult.Ok"/> the
    /// compound RTCP packet is the first <paramref name="plainLength"/> bytes.
    /// </summary>
    public SrtpResult UnprotectRtcp(Span<byte> packet, out int plainLength)
    {
        plainLength = 0;
        int trailer = 4 + _rtcpTagLength + _mki.Length;
        if (packet.Length < RtcpHeaderLength + trailer || (packet[0] >> 6) != 2)
        {
            return Counters.Count(SrtpResult.Malformed);
        }

        int wordOffset = _aead ? packet.Length - _mki.Length - 4 : packet.Length - _rtcpTagLength - _mki.Length - 4;
        int mkiOffset = _aead ? packet.Length - _mki.Length : wordOffset + 4;
        if (_mki.Length > 0 && !packet.Slice(mkiOffset, _mki.Length).SequenceEqual(_mki))
        {
            return Counters.Count(SrtpResult.MkiMismatch);
        }

        uint word = BinaryPrimitives.ReadUInt32BigEndian(packet.Slice(wordOffset));
        bool encrypted = (word & EncryptedFlag) != 0;
        uint index = word & MaxSrtcpIndex;
        uint ssrc = BinaryPrimitives.ReadUInt32BigEndian(packet.Slice(4));
        SrtpStream? stream = FindStream(ssrc);
        if (stream?.RtcpReplay is { } replay)
        {
            SrtpResult check = ToResult(replay.Check(index));
            if (check != SrtpResult.Ok)
            {
                return Counters.Count(check);
            }
        }

        if (_aead)
        {
            int tagOffset = wordOffset - GcmTagLength;
            Span<byte> nonce = stackalloc byte[12];
            RtcpNonce(nonce, ssrc, index);
            bool authentic;
            if (encrypted)
            {
                Span<byte> aad = stackalloc byte[RtcpHeaderLength + 4];
                packet.Slice(0, RtcpHeaderLength).CopyTo(aad);
                BinaryPrimitives.WriteUInt32BigEndian(aad.Slice(RtcpHeaderLength), word);
                Span<byte> body = packet.Slice(RtcpHeaderLength, tagOffset - RtcpHeaderLength);
                authentic = GcmOpen(_rtcpGcmCipher, _rtcpGcm!, nonce, body, packet.Slice(tagOffset, GcmTagLength), aad);
            }
            else
            {
                // E=0: AAD = packet || E+index; the index word is written over the tag to make it contiguous.
                Span<byte> tag = stackalloc byte[GcmTagLength];
                packet.Slice(tagOffset, GcmTagLength).CopyTo(tag);
                BinaryPrimitives.WriteUInt32BigEndian(packet.Slice(tagOffset), word);
                authentic = GcmOpen(_rtcpGcmCipher, _rtcpGcm!, nonce, Span<byte>.Empty, tag, packet.Slice(0, tagOffset + 4));
            }

            if (!authentic)
            {
                return Counters.Count(SrtpResult.AuthenticationFailed);
            }

            plainLength = tagOffset;
        }
        else
        {
            Span<byte> computed = stackalloc byte[_rtcpTagLength];
            ComputeHmac(_rtcpMac!, packet.Slice(0, wordOffset + 4), computed);
            if (!CryptographicOperations.FixedTimeEquals(computed, packet.Slice(packet.Length - _rtcpTagLength)))
            {
                return Counters.Count(SrtpResult.AuthenticationFailed);
            }

            if (encrypted)
            {
                Span<byte> iv = stackalloc byte[16];
                CounterIv(iv, _rtcpSalt, ssrc, index);
                _rtcpCipher!.Transform(iv, packet.Slice(RtcpHeaderLength, wordOffset - RtcpHeaderLength));
            }

            plainLength = wordOffset;
        }

        if (stream is null)
        {
            stream = GetOrCreateStream(ssrc);
            if (stream is null)
            {
                plainLength = 0;
                return Counters.Count(SrtpResult.TooManyStreams);
            }
        }

        stream.RtcpReplay ??= new ReplayWindow(_options.RtcpReplayWindowSize);
        stream.RtcpReplay.Mark(index);
        Counters.RtcpUnprotected++;
        return SrtpResult.Ok;
    }

    /// <summary>GCM nonce for SRTCP (RFC 7714 section 9.1): (0x0000 || SSRC || 0x0000 || 0 || index) XOR salt.</summary>
    private void RtcpNonce(Span<byte> nonce, uint ssrc, uint index)
    {
        nonce[0] = 0;
        nonce[1] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(nonce.Slice(2), ssrc);
        nonce[6] = 0;
        nonce[7] = 0;
        BinaryPrimitives.WriteUInt32BigEndian(nonce.Slice(8), index);
        XorSalt(nonce, _rtcpSalt);
    }
}
