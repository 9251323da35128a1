using Transport.Ice.Stun;

namespace Transport.Ice;

/// <summary>What a role does about a conflicting request (RFC 8445 section 7.3.1.1).</summary>
internal enum RoleConflictOutcome
{
    None,
    /// <summary>Keep our role and answer 487 Role Conflict.</summary>
    Respond487,
    /// <summary>Switch to the other role and process the request.</summary>
    Switch,
}

/// <summary>
/// The controlling or controlled behaviour (RFC 8445 sections 7.2.2, 7.3.1.1, 7.3.1.5, 8.1), as a strategy object
/// the agent holds instead of testing a flag.
/// </summary>
internal abstract class IceRoleStrategy
{
    public static readonly IceRoleStrategy Controlling = new ControllingRole();
    public static readonly IceRoleStrategy Controlled = new ControlledRole();

    public abstract IceRole Role { get; }
    public abstract IceRoleStrategy Opposite { get; }

    /// <summary>ICE-CONTROLLING or ICE-CONTROLLED with our tie-breaker.</summary>
    public abstract void WriteRoleAttribute(ref StunMessageWriter writer, ulong tieBreaker);

    /// <summary>Compares the request's role attribute with ours.</summary>
    public abstract RoleConflictOutcome ResolveConflict(in StunMessage request, ulong ourTieBreaker);

    /// <summary>A request with USE-CANDIDATE arrived on <paramref name="pair"/>.</summary>
    public abstract void OnUseCandidate(IceAgent agent, IcePair pair, TimeSpan now);

    /// <summary>Our check on <paramref name="pair"/> succeeded (<paramref name="nominating"/>: it carried USE-CANDIDATE).</summary>
    public abstract void OnCheckSucceeded(IceAgent agent, IcePair pair, bool nominating, TimeSpan now);

    /// <summary>Called after any check outcome and on timeouts: the controlling role may nominate.</summary>
    public virtual void ConsiderNomination(IceAgent agent, TimeSpan now) { }

    /// <summary>When <see cref="ConsiderNomination"/> wants to run again, or null.</summary>
    public virtual TimeSpan? NominationDeadline(IceAgent agent) => null;

    private sealed class ControllingRole : IceRoleStrategy
    {
        public override IceRole Role => IceRole.Controlling;
        public override IceRoleStrategy Opposite => Controlled;

        public override void WriteRoleAttribute(ref StunMessageWriter writer, ulong tieBreaker) =>
            writer.AddUInt64(StunAttributeType.IceControlling, tieBreaker);

        public override RoleConflictOutcome ResolveConflict(in StunMessage request, ulong ourTieBreaker)
        {
            if (!request.TryGetIceControlling(out var theirs)) return RoleConflictOutcome.None;
            return ourTieBreaker >= theirs ? RoleConflictOutcome.Respond487 : RoleConflictOutcome.Switch;
        }

        // RFC 8445 section 7.3.1.5: only the controlled agent acts on USE-CANDIDATE.
        public override void OnUseCandidate(IceAgent agent, IcePair pair, TimeSpan now) { }

        public override void OnCheckSucceeded(IceAgent agent, IcePair pair, bool nominating, TimeSpan now)
        {
            if (nominating) agent.Nominate(pair, now);
            else ConsiderNomination(agent, now);
        }

        /// <summary>
        /// Regular nomination (RFC 8445 section 8.1.1): once the best valid pair has no better pair still being
        /// checked, or <see cref="IceAgentOptions.NominationTimeout"/> after the first valid pair, check it again
        /// with USE-CANDIDATE.
        /// </summary>
        public override void ConsiderNomination(IceAgent agent, TimeSpan now)
        {
            var g = agent.Current;
            if (g.Remote is null) return;
            IcePair? best = null;
            foreach (var p in g.Pairs)
            {
                if (p.Nominated || p.NominationPending) return;
                if (p.State == IceCandidatePairState.Succeeded && (best is null || agent.PriorityOf(p) > agent.PriorityOf(best))) best = p;
            }
            if (best is null) return;
            var waitedEnough = agent.Options.NominationTimeout == TimeSpan.Zero
                || (g.FirstValidAt is { } first && now - first >= agent.Options.NominationTimeout);
            if (!waitedEnough)
            {
                foreach (var p in g.Pairs)
                    if (p.State is IceCandidatePairState.Frozen or IceCandidatePairState.Waiting or IceCandidatePairState.InProgress
                        && agent.PriorityOf(p) > agent.PriorityOf(best)) return;
            }
            best.NominationPending = true;
            agent.EnqueueTriggered(best, front: true);
        }

        public override TimeSpan? NominationDeadline(IceAgent agent)
        {
            var g = agent.Current;
            if (g.FirstValidAt is not { } first || agent.Options.NominationTimeout == TimeSpan.Zero) return null;
            foreach (var p in g.Pairs) if (p.Nominated || p.NominationPending) return null;
            return first + agent.Options.NominationTimeout;
        }
    }

    private sealed class ControlledRole : IceRoleStrategy
    {
        public override IceRole Role => IceRole.Controlled;
        public override IceRoleStrategy Opposite => Controlling;

        public override void WriteRoleAttribute(ref StunMessageWriter writer, ulong tieBreaker) =>
            writer.AddUInt64(StunAttributeType.IceControlled, tieBreaker);

        public override RoleConflictOutcome ResolveConflict(in StunMessage request, ulong ourTieBreaker)
        {
            if (!request.TryGetIceControlled(out var theirs)) return RoleConflictOutcome.None;
            return ourTieBreaker >= theirs ? RoleConflictOutcome.Switch : RoleConflictOutcome.Respond487;
        }

        public override void OnUseCandidate(IceAgent agent, IcePair pair, TimeSpan now)
        {
            if (pair.State == IceCandidatePairState.Succeeded) agent.Nominate(pair, now);
            else pair.NominateOnSuccess = true;
        }

        public override void OnCheckSucceeded(IceAgent agent, IcePair pair, bool nominating, TimeSpan now)
        {
            if (pair.NominateOnSuccess) agent.Nominate(pair, now);
        }
    }
}

/// <summary>Full ICE or ICE-lite (RFC 8445 section 2.5) as a strategy object.</summary>
internal abstract class IceModeStrategy
{
    public static readonly IceModeStrategy Full = new FullMode();
    public static readonly IceModeStrategy Lite = new LiteMode();

    /// <summary>True when the agent sends connectivity checks and consent checks.</summary>
    public abstract bool SendsChecks { get; }

    /// <summary>An authenticated request arrived on <paramref name="pair"/>.</summary>
    public abstract void OnRequest(IceAgent agent, IcePair pair, bool useCandidate, TimeSpan now);

    private sealed class FullMode : IceModeStrategy
    {
        public override bool SendsChecks => true;

        public override void OnRequest(IceAgent agent, IcePair pair, bool useCandidate, TimeSpan now)
        {
            // Triggered check (RFC 8445 section 7.3.1.4).
            if (pair.State is IceCandidatePairState.Frozen or IceCandidatePairState.Waiting or IceCandidatePairState.Failed)
            {
                pair.State = IceCandidatePairState.Waiting;
                agent.EnqueueTriggered(pair, front: false);
            }
            if (useCandidate) agent.Role.OnUseCandidate(agent, pair, now);
        }
    }

    private sealed class LiteMode : IceModeStrategy
    {
        public override bool SendsChecks => false;

        // A lite agent does not check: a pair the full peer nominates is valid by its check (RFC 8445 section 7.3.1.5).
        public override void OnRequest(IceAgent agent, IcePair pair, bool useCandidate, TimeSpan now)
        {
            if (!useCandidate) return;
            pair.State = IceCandidatePairState.Succeeded;
            agent.Nominate(pair, now);
        }
    }
}
