using System.Runtime.CompilerServices;

namespace Transport.Ice.Tests.Agent;

/// <summary>The events are one closed hierarchy (docs/cores.md): one kind per sealed record, and nothing else derives.</summary>
public class IceEventShapeTests
{
    [Fact]
    public void EverySealedEventHasItsOwnKind()
    {
        var types = typeof(IceEvent).Assembly.GetTypes().Where(t => t.IsSubclassOf(typeof(IceEvent))).ToList();
        Assert.All(types, t => Assert.True(t.IsSealed, t.Name));
        var kinds = types.Select(t => ((IceEvent)RuntimeHelpers.GetUninitializedObject(t)).Kind).ToList();
        Assert.Equal(Enum.GetValues<IceEventKind>().Order(), kinds.Order());
        Assert.Empty(typeof(IceEvent).GetConstructors()); // no public constructor
    }

    [Fact]
    public void AStateChangeCarriesItsKindTimeAndReason()
    {
        var e = new IceStateChangedEvent(TimeSpan.FromSeconds(3), IceConnectionState.Checking, IceConnectionState.Connected, IceStateReason.PairSelected, null);
        Assert.Equal((IceEventKind.StateChanged, TimeSpan.FromSeconds(3), IceStateReason.PairSelected), (e.Kind, e.At, e.Reason));
    }
}
