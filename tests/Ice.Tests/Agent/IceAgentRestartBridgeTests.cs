using System.Net;
using System.Text;
using Transport.Ice.Stun;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// A peer that restarts ICE the way libwebrtc does: its new candidate checks our previous credentials (its offer is
/// still on the way) and keeps that pairing after our answer. The agent follows it: the pair joins the new check list,
/// our checks on it say "theirNewUfrag:ourPreviousUfrag", and it is selected when the peer nominates it.
/// </summary>
public sealed class IceAgentRestartBridgeTests
{
    private static readonly IPEndPoint Local = new(IPAddress.Parse("10.0.0.2"), 2000);
    private static readonly IPEndPoint PeerOld = new(IPAddress.Parse("10.0.0.1"), 1000);
    private static readonly IPEndPoint PeerNew = new(IPAddress.Parse("10.0.0.1"), 1001);
    private static readonly IceCredentials Ours = new("bbbb", "bbbbbbbbbbbbbbbbbbbbbbbb");
    private static readonly IceCredentials TheirsOld = new("aaaa", "aaaaaaaaaaaaaaaaaaaaaaaa");
    private static readonly IceCredentials TheirsNew = new("a2a2", "a2a2a2a2a2a2a2a2a2a2a2a2");

    private static byte[] Request(string username, string password, bool useCandidate)
    {
        var buffer = new byte[300];
        Span<byte> tid = stackalloc byte[12];
        StunTransactionId.NewRandom().WriteTo(tid);
        var w = new StunMessageWriter(buffer, StunMessageType.BindingRequest, tid);
        w.AddString(StunAttributeType.Username, username);
        w.AddUInt32(StunAttributeType.Priority, 1853824767);
        w.AddUInt64(StunAttributeType.IceControlling, 99);
        if (useCandidate) w.AddFlag(StunAttributeType.UseCandidate);
        using (var key = StunKey.ShortTerm(password)) w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    private static byte[] Success(in StunMessage request, IPEndPoint mapped, string password)
    {
        var buffer = new byte[300];
        var w = new StunMessageWriter(buffer, StunMessageType.BindingSuccess, request.TransactionId);
        w.AddXorAddress(StunAttributeType.XorMappedAddress, mapped);
        using (var key = StunKey.ShortTerm(password)) w.AddMessageIntegrity(key);
        w.AddFingerprint();
        return buffer.AsSpan(0, w.Length).ToArray();
    }

    /// <summary>Everything the agent sends, as (remote, type, username or null, raw bytes).</summary>
    private static List<(IPEndPoint To, StunMessageType Type, string? User, byte[] Bytes)> Sent(IceAgent agent, TimeSpan now)
    {
        agent.HandleTimeout(now);
        var list = new List<(IPEndPoint, StunMessageType, string?, byte[])>();
        var buffer = new byte[1500];
        while (agent.TryPollTransmit(buffer, out var length, out var t))
        {
            var bytes = buffer.AsSpan(0, length).ToArray();
            Assert.True(StunMessage.TryRead(bytes, out var m));
            list.Add((t.Remote, m.Type, m.TryGetUsername(out var u) ? Encoding.UTF8.GetString(u) : null, bytes));
        }
        return list;
    }

    // Connected on PeerOld: the peer's nominating check, our check answered.
    private static IceAgent Connected(out TimeSpan now)
    {
        var agent = new IceAgent(new IceAgentOptions { Role = IceRole.Controlled, LocalCredentials = Ours, Random = new Random(1) });
        agent.AddHostCandidate(Local);
        agent.SetRemoteCredentials(TheirsOld, TimeSpan.Zero);
        now = TimeSpan.Zero;
        agent.HandleDatagram(Request("bbbb:aaaa", Ours.Password, useCandidate: true), Local, PeerOld, now);
        for (var i = 0; i < 10 && agent.SelectedRemote is null; i++)
        {
            now += TimeSpan.FromMilliseconds(50);
            foreach (var s in Sent(agent, now))
                if (s.Type == StunMessageType.BindingRequest && s.To.Equals(PeerOld))
                {
                    Assert.True(StunMessage.TryRead(s.Bytes, out var check));
                    agent.HandleDatagram(Success(check, Local, TheirsOld.Password), Local, PeerOld, now);
                }
        }
        Assert.Equal(PeerOld, agent.SelectedRemote?.Address);
        return agent;
    }

    [Theory]
    [InlineData(true)]    // the peer's new candidate checks us before its restart offer reached us
    [InlineData(false)]   // ... or only after we answered it
    public void APeerCheckingOurPreviousCredentialsFromItsNewCandidateIsFollowedToThatPair(bool beforeTheOffer)
    {
        using var agent = Connected(out var now);
        var bridgedRequest = Request("bbbb:a2a2", Ours.Password, useCandidate: true);   // our old ufrag, its new one
        if (beforeTheOffer)
        {
            now += TimeSpan.FromMilliseconds(10);
            Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(bridgedRequest, Local, PeerNew, now));
            Sent(agent, now);   // answered; our own check there uses the credentials we know (the peer would refuse it)
        }
        now += TimeSpan.FromMilliseconds(10);
        var ourNew = agent.Restart(now);                    // we answer its restart offer with new credentials
        agent.SetRemoteCredentials(TheirsNew, now);
        if (!beforeTheOffer) Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(bridgedRequest, Local, PeerNew, now));

        (IPEndPoint To, StunMessageType Type, string? User, byte[] Bytes)? check = null;
        for (var i = 0; i < 10 && check is null; i++)
        {
            now += TimeSpan.FromMilliseconds(50);
            check = Sent(agent, now).FirstOrDefault(s => s.Type == StunMessageType.BindingRequest && s.To.Equals(PeerNew));
        }
        Assert.NotNull(check);
        Assert.Equal("a2a2:bbbb", check.Value.User);        // theirs new, ours previous: what the peer's pairing expects
        Assert.True(StunMessage.TryRead(check.Value.Bytes, out var request));
        using (var theirNewKey = StunKey.ShortTerm(TheirsNew.Password)) Assert.True(request.CheckMessageIntegrity(theirNewKey));
        agent.HandleDatagram(Success(request, Local, TheirsNew.Password), Local, PeerNew, now);
        Assert.Equal(PeerNew, agent.SelectedRemote?.Address);  // the peer had nominated it (USE-CANDIDATE)

        // The peer goes on checking that pair with our previous credentials: still answered, still the selected pair.
        now += TimeSpan.FromMilliseconds(10);
        Assert.Equal(IceReceiveResult.Stun, agent.HandleDatagram(Request("bbbb:a2a2", Ours.Password, useCandidate: true), Local, PeerNew, now));
        var response = Sent(agent, now).Single(s => s.To.Equals(PeerNew) && s.Type == StunMessageType.BindingSuccess);
        Assert.True(StunMessage.TryRead(response.Bytes, out var answered));
        using (var ourOldKey = StunKey.ShortTerm(Ours.Password)) Assert.True(answered.CheckMessageIntegrity(ourOldKey));
        Assert.Equal(IceConnectionState.Connected, agent.State);
        Assert.NotEqual(Ours, ourNew);
        Assert.Equal(0, agent.DroppedCount(IceDropReason.Unauthenticated));
    }
}
