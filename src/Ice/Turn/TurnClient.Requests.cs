using System.Text;
using Transport.Ice.Stun;

namespace Transport.Ice.Turn;

/// <summary>Building requests and the long-term credential mechanism (RFC 8489 section 9.2, RFC 8656 section 7.1).</summary>
public sealed partial class TurnClient
{
    private StunKey? _key;
    private byte[]? _realm;
    private byte[]? _nonce;
    private byte[]? _passwordAlgorithms; // PASSWORD-ALGORITHMS as the server sent it, echoed back (RFC 8489 section 9.2.4)
    private StunPasswordAlgorithm _passwordAlgorithm = StunPasswordAlgorithm.Md5;

    /// <summary>The realm the server named in its 401 challenge, or null before it.</summary>
    public string? Realm => _realm is null ? null : Encoding.UTF8.GetString(_realm);

    /// <summary>The password algorithm in use (MD5 unless the server offered SHA-256 and the options prefer it).</summary>
    public StunPasswordAlgorithm PasswordAlgorithm => _passwordAlgorithm;

    /// <summary>ADDITIONAL-ADDRESS-FAMILY as coturn numbers it (draft-ietf-tram-turnbis before RFC 8656 assigned 0x8000).</summary>
    internal const ushort LegacyAdditionalAddressFamilyType = 0x8032;

    private void SendAllocate() => Enqueue(new PendingRequest(RequestKind.Allocate, null!));

    private void SendRefresh(uint lifetime) => Enqueue(new PendingRequest(RequestKind.Refresh, null!) { Lifetime = lifetime });

    private void SendCreatePermission(Permission permission)
    {
        var p = new PendingRequest(RequestKind.CreatePermission, null!) { Permission = permission };
        permission.Pending = p;
        Enqueue(p);
    }

    private void SendChannelBind(Channel channel)
    {
        var p = new PendingRequest(RequestKind.ChannelBind, null!) { Channel = channel };
        channel.Pending = p;
        Enqueue(p);
    }

    /// <summary>Builds (or rebuilds, with a new transaction ID and the current nonce) the request and starts its transaction.</summary>
    private void Enqueue(PendingRequest p)
    {
        var length = BuildRequest(p, _scratch);
        p.Transaction = new StunClientTransaction(_scratch.AsSpan(0, length), _retransmission);
        p.Transaction.Start(_now);
        _pending.Add(p);
    }

    private int BuildRequest(PendingRequest p, Span<byte> buffer)
    {
        Span<byte> id = stackalloc byte[StunHeader.TransactionIdSize];
        StunTransactionId.NewRandom().WriteTo(id);
        var method = p.Kind switch
        {
            RequestKind.Allocate => StunMethod.Allocate,
            RequestKind.Refresh => StunMethod.Refresh,
            RequestKind.CreatePermission => StunMethod.CreatePermission,
            _ => StunMethod.ChannelBind,
        };
        var writer = new StunMessageWriter(buffer, new StunMessageType(method, StunClass.Request), id);
        switch (p.Kind)
        {
            case RequestKind.Allocate:
                writer.AddRequestedTransport(ProtocolUdp);
                if (_options.RequestedLifetime is not null) writer.AddLifetime(LifetimeSeconds());
                // RFC 8656 section 7.1: absent means IPv4, so it is only sent for IPv6 (older servers reject it less often).
                if (_options.RequestedAddressFamily == TurnAddressFamily.IPv6) writer.AddRequestedAddressFamily(StunAddress.FamilyIPv6);
                if (_options.AdditionalIPv6)
                {
                    writer.AddAdditionalAddressFamily(StunAddress.FamilyIPv6);
                    if (_options.LegacyAdditionalAddressFamily) writer.Add(LegacyAdditionalAddressFamilyType, [StunAddress.FamilyIPv6, 0, 0, 0]);
                }
                if (_options.Software is { } software) writer.AddString(StunAttributeType.Software, software);
                break;
            case RequestKind.Refresh:
                writer.AddLifetime(p.Lifetime);
                break;
            case RequestKind.CreatePermission:
                writer.AddXorAddress(StunAttributeType.XorPeerAddress, p.Permission!.Ip);
                break;
            case RequestKind.ChannelBind:
                writer.AddChannelNumber(p.Channel!.Number);
                writer.AddXorAddress(StunAttributeType.XorPeerAddress, p.Channel.Peer);
                break;
        }
        p.Authenticated = _key is not null;
        if (_key is not null)
        {
            writer.AddString(StunAttributeType.Username, _options.Username);
            writer.Add(StunAttributeType.Realm, _realm);
            writer.Add(StunAttributeType.Nonce, _nonce);
            if (_passwordAlgorithms is not null)
            {
                writer.Add(StunAttributeType.PasswordAlgorithms, _passwordAlgorithms);
                writer.AddPasswordAlgorithm(_passwordAlgorithm);
            }
            if (_passwordAlgorithm == StunPasswordAlgorithm.Sha256) writer.AddMessageIntegritySha256(_key);
            else writer.AddMessageIntegrity(_key);
        }
        if (_options.UseFingerprint) writer.AddFingerprint();
        return writer.Length;
    }

    /// <summary>
    /// Takes REALM, NONCE and PASSWORD-ALGORITHMS from a 401 or 438 answer (RFC 8489 section 9.2.5) and derives
    /// the key. False when the answer lacks them.
    /// </summary>
    private bool TakeChallenge(in StunMessage response)
    {
        if (!response.TryGetNonce(out var nonce) || nonce.IsEmpty) return false;
        var realmChanged = false;
        if (response.TryGetRealm(out var realm) && !realm.IsEmpty)
        {
            realmChanged = _realm is null || !realm.SequenceEqual(_realm);
            _realm = realm.ToArray();
        }
        if (_realm is null) return false;
        _nonce = nonce.ToArray();

        // Without PASSWORD-ALGORITHMS (classic servers, or a 438 that does not repeat it) the algorithm stays.
        var algorithm = _key is null ? StunPasswordAlgorithm.Md5 : _passwordAlgorithm;
        if (response.TryGetAttribute(StunAttributeType.PasswordAlgorithms, out var raw))
        {
            Span<StunPasswordAlgorithm> list = stackalloc StunPasswordAlgorithm[8];
            var count = response.GetPasswordAlgorithms(list);
            if (count > 0)
            {
                _passwordAlgorithms = raw.ToArray();
                var hasMd5 = false;
                var hasSha256 = false;
                for (var i = 0; i < Math.Min(count, list.Length); i++)
                {
                    hasMd5 |= list[i] == StunPasswordAlgorithm.Md5;
                    hasSha256 |= list[i] == StunPasswordAlgorithm.Sha256;
                }
                algorithm = hasSha256 && (_options.PreferSha256 || !hasMd5) ? StunPasswordAlgorithm.Sha256 : StunPasswordAlgorithm.Md5;
            }
        }
        if (_key is null || realmChanged || algorithm != _passwordAlgorithm)
        {
            _key?.Dispose();
            _key = StunKey.LongTerm(_options.Username, Encoding.UTF8.GetString(_realm), _options.Password, algorithm);
        }
        _passwordAlgorithm = algorithm;
        return true;
    }

    /// <summary>Forgets the credentials state (a new server after a redirect challenges afresh).</summary>
    private void ResetChallenge()
    {
        _key?.Dispose();
        _key = null;
        _realm = _nonce = _passwordAlgorithms = null;
        _passwordAlgorithm = StunPasswordAlgorithm.Md5;
    }
}
