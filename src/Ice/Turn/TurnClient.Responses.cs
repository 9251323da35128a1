using System.Text;
using Transport.Ice.Stun;

namespace Transport.Ice.Turn;

/// <summary>Answers from the server: success, errors (401, 438, 300, the rest) and timeouts.</summary>
public sealed partial class TurnClient
{
    private void HandleResponse(in StunMessage message)
    {
        PendingRequest? p = null;
        foreach (var candidate in _pending)
            if (candidate.Transaction.Id.Matches(message.TransactionId)) { p = candidate; break; }
        if (p is null) { Dropped.UnknownTransaction++; return; }

        // RFC 8489 section 9.2.5: a success response to an authenticated request must carry a valid integrity; an
        // error response may lack it (a 401 or 438 server cannot always compute it), but a wrong one is discarded.
        var hasIntegrity = message.HasMessageIntegrity || message.HasMessageIntegritySha256;
        if (message.Class == StunClass.SuccessResponse && p.Authenticated && (_key is null || !message.CheckIntegrity(_key))
            || message.Class == StunClass.ErrorResponse && hasIntegrity && (_key is null || !message.CheckIntegrity(_key)))
        {
            Dropped.Unauthenticated++;
            return;
        }

        if (p.Transaction.HandleResponse(message, _now) != StunResponseMatch.Completed) { Dropped.UnknownTransaction++; return; }
        _pending.Remove(p);
        switch (p.Transaction.State)
        {
            case StunTransactionState.UnknownAttributes:
                Fail(p, TurnFailureKind.UnknownAttributes, 0, "the response carried comprehension-required attributes we do not understand");
                break;
            case StunTransactionState.Succeeded:
                OnSuccess(p, message);
                break;
            default:
                OnError(p, message);
                break;
        }
    }

    private void OnError(PendingRequest p, in StunMessage message)
    {
        string reason;
        if (message.TryGetErrorCode(out var code, out var reasonBytes)) reason = Encoding.UTF8.GetString(reasonBytes);
        else { code = 0; reason = "error response without ERROR-CODE"; }

        // RFC 8656 section 7.1: the first Allocate goes without credentials; its 401 brings REALM and NONCE. Retried once.
        if (code == StunErrorCode.Unauthenticated && !p.Authenticated && TakeChallenge(message))
        {
            Enqueue(p);
            return;
        }
        // RFC 8489 section 9.2.5: 438 carries a fresh NONCE; the request is sent again with it.
        if (code == StunErrorCode.StaleNonce && TakeChallenge(message))
        {
            if (p.StaleNonceRetries < _options.MaxStaleNonceRetries)
            {
                p.StaleNonceRetries++;
                StaleNonceRetries++;
                Enqueue(p);
                return;
            }
            Fail(p, TurnFailureKind.TooManyRetries, code, $"{code} {reason} (after {p.StaleNonceRetries} retries with a new nonce)");
            return;
        }
        // RFC 8656 section 7.3 and RFC 8489 section 10: 300 with ALTERNATE-SERVER: start over on that server.
        if (code == StunErrorCode.TryAlternate && p.Kind == RequestKind.Allocate)
        {
            if (!message.TryGetAlternateServer(out var alternate))
            {
                Fail(p, TurnFailureKind.MalformedResponse, code, "300 without ALTERNATE-SERVER");
                return;
            }
            if (_redirects >= _options.MaxRedirects || alternate == ServerAddress)
            {
                Fail(p, TurnFailureKind.TooManyRetries, code, $"too many redirects (last to {alternate})");
                return;
            }
            _redirects++;
            ServerAddress = alternate;
            ResetChallenge();
            SendAllocate();
            return;
        }
        var kind = code is StunErrorCode.Unauthenticated or StunErrorCode.WrongCredentials ? TurnFailureKind.Authentication : TurnFailureKind.ErrorResponse;
        if (kind == TurnFailureKind.Authentication) reason = $"authentication failed: {reason} (check the user name and password for realm '{Realm}')";
        Fail(p, kind, code, reason);
    }

    private void OnTimedOut(PendingRequest p)
    {
        if (p.Kind == RequestKind.Refresh && State == TurnClientState.Allocated && ExpiresAt is { } expires && _now < expires)
        {
            // The allocation still has time: try again rather than give it up (RFC 8656 section 8).
            SendRefresh(p.Lifetime);
            return;
        }
        var seconds = (_retransmission.Reliable ? _retransmission.ReliableTimeout : p.Transaction.CompletedAt - p.Transaction.StartedAt
            ?? TimeSpan.Zero).TotalSeconds;
        Fail(p, TurnFailureKind.Timeout, 0, $"no response from {ServerAddress} within {seconds:0.#} s");
    }

    private void Fail(PendingRequest p, TurnFailureKind kind, int code, string reason)
    {
        switch (p.Kind)
        {
            case RequestKind.Allocate:
                CancelAll();
                Transition(TurnClientState.Failed, new TurnAllocationFailed(kind, code, reason));
                break;
            case RequestKind.Refresh when State == TurnClientState.Closing:
                Transition(TurnClientState.Closed, new TurnClosed($"deallocation not confirmed: {reason}"));
                break;
            case RequestKind.Refresh:
                CancelAll();
                Transition(TurnClientState.Expired, new TurnAllocationExpired(code, $"Refresh refused: {code} {reason}"));
                break;
            case RequestKind.CreatePermission:
                var permission = p.Permission!;
                permission.Pending = null;
                _permissions.Remove(permission.Ip);
                _events.Enqueue(new TurnPermissionFailed(permission.Ip, kind, code, reason));
                break;
            case RequestKind.ChannelBind:
                var channel = p.Channel!;
                channel.Pending = null;
                _channelsByPeer.Remove(channel.Peer);
                _channelsByNumber.Remove(channel.Number);
                if (_permissions.TryGetValue(IpOnly(channel.Peer), out var covered) && covered.CoveredByChannel && !covered.Installed)
                    _permissions.Remove(covered.Ip);
                _events.Enqueue(new TurnChannelBindFailed(channel.Peer, channel.Number, kind, code, reason));
                break;
        }
    }

    private void OnSuccess(PendingRequest p, in StunMessage message)
    {
        switch (p.Kind)
        {
            case RequestKind.Allocate:
                OnAllocated(p, message);
                break;
            case RequestKind.Refresh:
                if (State == TurnClientState.Closing)
                {
                    Transition(TurnClientState.Closed, new TurnClosed("allocation deleted"));
                    break;
                }
                var lifetime = message.TryGetLifetime(out var seconds) ? TimeSpan.FromSeconds(seconds) : TimeSpan.FromSeconds(p.Lifetime);
                if (lifetime <= TimeSpan.Zero)
                {
                    CancelAll();
                    Transition(TurnClientState.Expired, new TurnAllocationExpired(0, "the server granted no lifetime"));
                    break;
                }
                SetLifetime(lifetime);
                _events.Enqueue(new TurnAllocationRefreshed(lifetime));
                break;
            case RequestKind.CreatePermission:
                var permission = p.Permission!;
                permission.Pending = null;
                permission.Installed = true;
                permission.RefreshAt = _now + _options.PermissionRefreshInterval;
                _events.Enqueue(new TurnPermissionCreated(permission.Ip));
                break;
            case RequestKind.ChannelBind:
                var channel = p.Channel!;
                channel.Pending = null;
                channel.RefreshAt = _now + _options.ChannelRefreshInterval;
                // RFC 8656 section 12.2: a ChannelBind also installs or refreshes the permission for the peer's IP.
                if (_permissions.TryGetValue(IpOnly(channel.Peer), out var covered) && !covered.Installed)
                {
                    covered.Installed = true;
                    covered.RefreshAt = _now + _options.PermissionRefreshInterval;
                    _events.Enqueue(new TurnPermissionCreated(covered.Ip));
                }
                if (!channel.Bound)
                {
                    channel.Bound = true;
                    _events.Enqueue(new TurnChannelBound(channel.Peer, channel.Number));
                }
                break;
        }
    }

    private void OnAllocated(PendingRequest p, in StunMessage message)
    {
        Span<StunAddress> relayed = stackalloc StunAddress[2];
        var count = message.GetXorRelayedAddresses(relayed);
        if (count == 0)
        {
            Fail(p, TurnFailureKind.MalformedResponse, 0, "Allocate success without XOR-RELAYED-ADDRESS");
            return;
        }
        message.TryGetXorMappedAddress(out var mapped);
        // RFC 8656 section 7.3: LIFETIME is mandatory in the success response; 600 s (the default) if a server forgets it.
        var lifetime = TimeSpan.FromSeconds(message.TryGetLifetime(out var seconds) ? seconds : 600);
        RelayedAddress = relayed[0];
        AdditionalRelayedAddress = count > 1 ? relayed[1] : default;
        MappedAddress = mapped;
        Transition(TurnClientState.Allocated, new TurnAllocated(RelayedAddress, count > 1 ? relayed[1] : null, mapped, lifetime));
        SetLifetime(lifetime);
        // Permissions and channels asked for while allocating go out now.
        foreach (var permission in _permissions.Values)
            if (!permission.Installed && permission.Pending is null && !permission.CoveredByChannel) SendCreatePermission(permission);
        foreach (var channel in _channelsByPeer.Values)
            if (!channel.Bound && channel.Pending is null) SendChannelBind(channel);
    }

    private void SetLifetime(TimeSpan lifetime)
    {
        ExpiresAt = _now + lifetime;
        if (!_options.RefreshAllocation) { RefreshAt = null; return; }
        var margin = _options.RefreshMargin;
        if (margin + margin > lifetime) margin = lifetime / 2;
        RefreshAt = _now + lifetime - margin;
    }
}
