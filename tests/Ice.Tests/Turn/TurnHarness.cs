using Transport.Ice.Stun;
using Transport.Ice.Turn;

namespace Transport.Ice.Tests.Turn;

/// <summary>Drives one <see cref="TurnClient"/> against <see cref="FakeTurnServer"/>s in virtual time, recording events with their times.</summary>
internal sealed class TurnHarness : IDisposable
{
    private readonly byte[] _buffer = new byte[1500];

    public TurnHarness(Func<TurnClientOptions, TurnClientOptions>? configure = null, params FakeTurnServer[] extraServers)
    {
        var options = new TurnClientOptions { Server = FakeTurnServer.Address, Username = FakeTurnServer.User, Password = FakeTurnServer.Pass };
        Client = new TurnClient(configure is null ? options : configure(options));
        Servers[FakeTurnServer.Address] = new FakeTurnServer();
        foreach (var s in extraServers) Servers[s.Self] = s;
    }

    public TurnClient Client { get; }
    public Dictionary<StunAddress, FakeTurnServer> Servers { get; } = new();
    public FakeTurnServer Server => Servers[FakeTurnServer.Address];
    public TimeSpan Now { get; private set; }
    public List<(TimeSpan At, TurnEvent Event)> Events { get; } = new();
    public List<(TimeSpan At, byte[] Bytes)> Transmits { get; } = new();

    public IEnumerable<T> EventsOf<T>() where T : TurnEvent => Events.Select(e => e.Event).OfType<T>();

    public static TimeSpan S(double seconds) => TimeSpan.FromSeconds(seconds);

    public void Start()
    {
        Client.Start(Now);
        Pump();
    }

    /// <summary>Delivers every transmit to its server and every answer back, then drains events.</summary>
    public void Pump()
    {
        while (Client.TryPollTransmit(_buffer, out var n, out var to))
        {
            var bytes = _buffer.AsSpan(0, n).ToArray();
            Transmits.Add((Now, bytes));
            var answer = Servers[to].Handle(bytes, Now);
            if (answer is not null) Client.HandleDatagram(answer, to, Now);
        }
        while (Client.TryPollEvent(out var e)) Events.Add((Now, e));
    }

    /// <summary>Processes every client deadline up to <paramref name="until"/>, in order, at its exact time.</summary>
    public void RunUntil(TimeSpan until)
    {
        Pump();
        while (Client.PollTimeout() is { } due && due <= until)
        {
            Assert.True(due >= Now, $"deadline {due} is in the past (now {Now})");
            Now = due;
            Client.HandleTimeout(Now);
            Pump();
        }
        Now = until;
    }

    /// <summary>Hands a message to the client as if the (main) server sent it.</summary>
    public void Receive(byte[] datagram)
    {
        Client.HandleDatagram(datagram, FakeTurnServer.Address, Now);
        Pump();
    }

    public TimeSpan[] RequestTimes(ushort method) => Server.Requests.Where(r => r.Method == method).Select(r => r.At).ToArray();

    public void Dispose() => Client.Dispose();
}
