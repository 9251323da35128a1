using System.Net;

namespace Transport.Ice.Tests.Agent;

/// <summary>
/// <see cref="IceCheckList"/> alone: pair formation and initial states by foundation (RFC 8445 section 6.1.2.6), the
/// size bound, which pair is checked next (section 6.1.4.2), unfreezing on success (section 7.2.5.3.3), the best valid
/// pair, and the removal of a lost local candidate's pairs.
/// </summary>
public sealed class IceCheckListTests
{
    private static readonly IceCandidate LocalA = Host("10.0.0.1", 1000, 65535, "1");
    private static readonly IceCandidate LocalB = Host("10.0.0.1", 1001, 65534, "1");
    private static readonly IceCandidate LocalV6 = Host("fd00::1", 1000, 65533, "2");
    private static readonly IceCandidate RemoteX = Host("10.0.0.2", 2000, 65535, "7");
    private static readonly IceCandidate RemoteY = Host("10.0.0.3", 2000, 65000, "8");

    private static IceCandidate Host(string ip, int port, ushort localPreference, string foundation) =>
        new(IceCandidateType.Host, new IPEndPoint(IPAddress.Parse(ip), port), IceCandidate.ComputePriority(IceCandidateType.Host, localPreference), foundation);

    private static IceCheckList NewList() => new IceGeneration(IceCredentials.Generate()).CheckList;

    private static IcePair Add(IceCheckList list, IceCandidate local, IceCandidate remote, int max = 100)
    {
        var pair = list.GetOrAdd(local, remote, max, out var added, out var full);
        Assert.True(added);
        Assert.False(full);
        return pair!;
    }

    [Fact]
    public void TheFirstPairOfAFoundationIsWaitingTheOthersFrozenAndAPairIsFormedOnce()
    {
        var list = NewList();
        var ax = Add(list, LocalA, RemoteX);
        var bx = Add(list, LocalB, RemoteX);   // same foundation "1/7"
        var ay = Add(list, LocalA, RemoteY);   // "1/8"
        Assert.Equal((IceCandidatePairState.Waiting, IceCandidatePairState.Frozen, IceCandidatePairState.Waiting), (ax.State, bx.State, ay.State));
        Assert.Same(ax, list.GetOrAdd(LocalA, RemoteX, 100, out var added, out _));
        Assert.False(added);
        Assert.Same(bx, list.Find(LocalB.Base, RemoteX.Address));
        Assert.Null(list.Find(LocalB.Base, RemoteX.Address, iceTcp: true));
        Assert.Equal(3, list.Count);
    }

    [Fact]
    public void APairOverTheBoundIsNotFormedAndCandidatesThatMayNotPairFormNone()
    {
        var list = NewList();
        Add(list, LocalA, RemoteX, max: 1);
        Assert.Null(list.GetOrAdd(LocalB, RemoteX, 1, out var added, out var full));
        Assert.Equal((false, true), (added, full));
        // Another address family, or a TCP candidate with a UDP one: no pair, and not counted as over the bound.
        Assert.Null(list.GetOrAdd(LocalV6, RemoteX, 100, out added, out full));
        Assert.Equal((false, false), (added, full));
        var tcp = new IceCandidate(IceCandidateType.Host, new IPEndPoint(IPAddress.Parse("10.0.0.1"), 1002), 1000, "9")
        { Protocol = IceProtocol.Tcp, TcpType = IceTcpType.Passive };
        Assert.Null(list.GetOrAdd(tcp, RemoteX, 100, out _, out full));
        Assert.False(full);
        Assert.Equal(1, list.Count);
    }

    [Fact]
    public void TriggeredChecksComeFirstThenTheBestWaitingPairThenTheBestFrozenOne()
    {
        var list = NewList();
        var ax = Add(list, LocalA, RemoteX);   // Waiting, the highest priority
        var bx = Add(list, LocalB, RemoteX);   // Frozen
        var ay = Add(list, LocalA, RemoteY);   // Waiting
        Func<IcePair, bool> none = _ => false;
        Assert.Same(ax, list.Next(take: false, IceRole.Controlling, ordinaryChecksDone: false, none));
        list.Trigger(ay, front: false, IceRole.Controlling);
        Assert.Same(ay, list.Next(take: true, IceRole.Controlling, false, none));
        Assert.Same(ax, list.Next(take: false, IceRole.Controlling, false, none));
        ax.State = IceCandidatePairState.InProgress;
        ay.State = IceCandidatePairState.InProgress;
        Assert.Same(bx, list.Next(take: false, IceRole.Controlling, false, none));
        // Once a pair of the list is selected only triggered checks go.
        Assert.Null(list.Next(take: false, IceRole.Controlling, ordinaryChecksDone: true, none));
        list.Trigger(bx, front: true, IceRole.Controlling);
        Assert.Same(bx, list.Next(take: true, IceRole.Controlling, ordinaryChecksDone: true, none));
    }

    [Fact]
    public void ASuccessUnfreezesItsFoundationAndTheBestValidPairSkipsFailedOnes()
    {
        var list = NewList();
        var ax = Add(list, LocalA, RemoteX);
        var bx = Add(list, LocalB, RemoteX);
        var ay = Add(list, LocalA, RemoteY);
        Assert.Null(list.BestValid(IceRole.Controlling));
        list.Unfreeze(ax.Foundation);
        Assert.Equal(IceCandidatePairState.Waiting, bx.State);
        (ax.Valid, ay.Valid) = (true, true);
        (ax.State, ay.State) = (IceCandidatePairState.Succeeded, IceCandidatePairState.Succeeded);
        Assert.Same(ax, list.BestValid(IceRole.Controlling));
        ax.State = IceCandidatePairState.Failed;
        Assert.Same(ay, list.BestValid(IceRole.Controlled));
    }

    [Fact]
    public void RemovingALocalCandidateTakesItsPairsOutFailedWithTheirQueuedChecksStale()
    {
        var list = NewList();
        var ax = Add(list, LocalA, RemoteX);
        var bx = Add(list, LocalB, RemoteX);
        var ay = Add(list, LocalA, RemoteY);
        list.Trigger(ax, front: true, IceRole.Controlling);
        ax.NominationPending = true;
        Assert.Equal(2, list.RemoveLocal(LocalA));
        Assert.Equal([bx], list.Pairs);
        Assert.Null(list.Find(LocalA.Base, RemoteX.Address));
        Assert.All(new[] { ax, ay }, p => Assert.Equal(IceCandidatePairState.Failed, p.State));
        Assert.False(ax.NominationPending);
        Assert.Same(bx, list.Next(take: true, IceRole.Controlling, false, _ => false));   // the stale entry is skipped
        Assert.False(list.AllFailed);
        bx.State = IceCandidatePairState.Failed;
        Assert.True(list.AllFailed);
        Assert.False(NewList().AllFailed);
        // The same candidates may pair again later (a new relayed candidate at the same address): a new pair.
        Assert.NotSame(ax, Add(list, LocalA, RemoteX));
    }
}
