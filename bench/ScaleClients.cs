using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Threading.Channels;
using Transport.Dtls;
using Transport.Sctp;
using Transport.Streaming;
using Transport.Streaming.Io;
using Transport.Streaming.WebRtc;

namespace Transport.Bench;

/// <summary>
/// What one <see cref="ScaleRun"/> client process is told: its connections, set-ups in flight, the ICE keepalive of both
/// sides (<c>--keepalive</c>, 0: the default), its share of the set-up pace (set-ups per second, 0: unpaced), the options
/// of the load generator alone (<c>--client-keepalive</c>, <c>--client-consent</c> in seconds, 0: the default; whether
/// its drivers listen for ICE-TCP) and the loopback address its sockets are bound to.
/// </summary>
internal sealed record ScaleClientSettings(int Count, int Concurrency, int Keepalive, double Rate, int ClientKeepalive, int ClientConsent,
                                           bool IceTcp, string Address)
{
    public IEnumerable<string> ToArgs() =>
        [Count.ToString(CultureInfo.InvariantCulture), Concurrency.ToString(CultureInfo.InvariantCulture), Keepalive.ToString(CultureInfo.InvariantCulture),
         Rate.ToString("R", CultureInfo.InvariantCulture), ClientKeepalive.ToString(CultureInfo.InvariantCulture),
         ClientConsent.ToString(CultureInfo.InvariantCulture), IceTcp ? "1" : "0", Address];

    // args[0] is the verb.
    public static ScaleClientSettings FromArgs(string[] args) => new(
        int.Parse(args[1], CultureInfo.InvariantCulture), int.Parse(args[2], CultureInfo.InvariantCulture), int.Parse(args[3], CultureInfo.InvariantCulture),
        double.Parse(args[4], CultureInfo.InvariantCulture), int.Parse(args[5], CultureInfo.InvariantCulture), int.Parse(args[6], CultureInfo.InvariantCulture),
        args[7] == "1", args[8]);

    /// <summary>
    /// The clients' peer-connection options: the certificate, <c>--keepalive</c> (both sides), then the load generator's own
    /// liveness timers. A longer consent interval gets a consent timeout of three intervals, so one lost check (the server's
    /// port drops datagrams under load) does not expire consent (RFC 7675 section 5.1 leaves both to the implementation).
    /// </summary>
    public PeerConnectionOptions ClientOptions(DtlsCertificate certificate)
    {
        var options = new PeerConnectionOptions { Certificate = certificate };
        var ice = options.Ice;
        if (Keepalive > 0) ice = ice with { KeepaliveInterval = TimeSpan.FromSeconds(Keepalive) };
        if (ClientKeepalive > 0) ice = ice with { KeepaliveInterval = TimeSpan.FromSeconds(ClientKeepalive) };
        if (ClientConsent > 0)
        {
            var interval = TimeSpan.FromSeconds(ClientConsent);
            ice = ice with { ConsentInterval = interval, ConsentTimeout = TimeSpan.FromTicks(Math.Max(ice.ConsentTimeout.Ticks, 3 * interval.Ticks)) };
        }
        return options with { Ice = ice };
    }

    /// <summary>
    /// The clients' driver options: asynchronous receives (no thread per socket), the system's socket buffers, and no
    /// ICE-TCP listener unless asked for (a browser listens for none either): one descriptor per connection instead of two.
    /// </summary>
    public UdpDriverOptions DriverOptions() => new()
    {
        DedicatedReceiveThreads = false,
        SocketReceiveBufferSize = 0,
        SocketSendBufferSize = 0,
        IceTcp = new IceTcpOptions { Enabled = IceTcp },
    };
}

/// <summary>
/// The child of <see cref="ScaleRun"/>: <c>count</c> client connections, each on a driver and socket of its own
/// (asynchronous receives and pool timers, so ten thousand of them need no thread each), at most <c>concurrency</c>
/// set-ups in flight, offers started at a steady pace when one is given.
/// </summary>
internal static class ScaleClients
{
    public static async Task<int> RunAsync(string[] args)
    {
        var settings = ScaleClientSettings.FromArgs(args);
        var count = settings.Count;
        var certificate = DtlsCertificate.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
        var time = new PoolTimers();
        var driverOptions = settings.DriverOptions();
        var local = new IPEndPoint(IPAddress.Parse(settings.Address), 0);
        var output = Channel.CreateUnbounded<string>(new UnboundedChannelOptions { SingleReader = true });
        var writer = Task.Run(async () =>
        {
            await foreach (var line in output.Reader.ReadAllAsync()) await Console.Out.WriteLineAsync(line);   // Console.Out flushes each line
            await Console.Out.FlushAsync();
        });
        var answers = new ConcurrentDictionary<int, TaskCompletionSource<string>>();
        var commands = Channel.CreateUnbounded<string>();
        var reader = Task.Run(async () =>
        {
            string? line;
            while ((line = await Console.In.ReadLineAsync()) is not null)
            {
                if (line.StartsWith("A ", StringComparison.Ordinal))
                {
                    var parts = line.Split(' ');
                    if (answers.TryRemove(int.Parse(parts[1], CultureInfo.InvariantCulture), out var tcs))
                        tcs.TrySetResult(Encoding.UTF8.GetString(Convert.FromBase64String(parts[2])));
                }
                else commands.Writer.TryWrite(line);
            }
            commands.Writer.TryComplete();
        });

        // The same warm-up as the server's, against a server driver of this process, so the measured set-ups run warm code.
        await using (var warmServer = new UdpDriver())
        {
            warmServer.Bind(new IPEndPoint(IPAddress.Loopback, 0));
            await ScaleRun.WarmUpAsync(warmServer, new PeerConnectionOptions { Certificate = certificate }, certificate, driverOptions, time);
        }

        var clientOptions = settings.ClientOptions(certificate);
        var clients = new Client[count];
        using var slots = new SemaphoreSlim(settings.Concurrency);
        var tenth = Math.Max(1, count / 10);
        var done = 0;
        ScaleRun.CpuMark? fromTenth = null;
        var setups = new List<Task>();
        // Paced: the i-th offer starts no earlier than i / rate after the first (and still waits for a free slot).
        var pace = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            if (settings.Rate > 0 && TimeSpan.FromSeconds(i / settings.Rate) - pace.Elapsed is { Ticks: > 0 } wait) await Task.Delay(wait);
            await slots.WaitAsync();
            var id = i;
            setups.Add(Task.Run(async () =>
            {
                try
                {
                    var driver = new UdpDriver(time, driverOptions);
                    var pc = (PeerConnection?)null;
                    try
                    {
                        driver.Bind(local);
                        pc = new PeerConnection(driver, clientOptions);
                    }
                    catch
                    {
                        await driver.DisposeAsync();
                        throw;
                    }
                    var client = clients[id] = new Client(driver, pc);
                    var answer = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
                    answers[id] = answer;
                    ScaleRun.Trace($"client {id} created");
                    var offer = await pc.CreateOfferAsync();
                    ScaleRun.Trace($"client {id} offer");
                    output.Writer.TryWrite($"O {id} {Convert.ToBase64String(Encoding.UTF8.GetBytes(offer))}");
                    var answerText = await answer.Task.WaitAsync(ScaleRun.Patience);
                    ScaleRun.Trace($"client {id} answer");
                    await pc.SetRemoteDescriptionAsync(answerText);
                    ScaleRun.Trace($"client {id} answer set");
                    client.Channel = await pc.CreateDataChannelAsync("scale").WaitAsync(ScaleRun.Patience);
                    client.Loop = client.RunAsync();
                }
                catch (Exception e) { output.Writer.TryWrite($"ERROR {id} {e.GetType().Name}: {e.Message}"); }
                finally
                {
                    if (Interlocked.Increment(ref done) == tenth) fromTenth = ScaleRun.CpuMark.Take();
                    slots.Release();
                }
            }));
        }
        await Task.WhenAll(setups);
        var toLast = ScaleRun.CpuMark.Take();
        output.Writer.TryWrite(fromTenth is { } from ? $"READY {toLast.PerSetUp(from, count - tenth)} (set-ups {tenth} to {count})" : "READY");

        await foreach (var command in commands.Reader.ReadAllAsync())
        {
            if (command == "PING")
            {
                var live = clients.Where(c => c?.Channel is not null).ToArray();
                var rtts = await Task.WhenAll(live.Select(c => c.PingAsync()));
                output.Writer.TryWrite("RTT " + string.Join(' ', rtts.Where(r => r >= 0).Select(r => r.ToString("0.###", CultureInfo.InvariantCulture))));
            }
            else if (command == "STATE")
                output.Writer.TryWrite($"CONNECTED {clients.Count(c => c?.Connection.State == ConnectionState.Connected)}");
            else if (command == "CPU")   // this process's CPU so far (the load generator's own idle cost between two of these)
                output.Writer.TryWrite(string.Create(CultureInfo.InvariantCulture, $"CPU {ScaleRun.PreciseProcessCpu().TotalMilliseconds:0.0}"));
        }
        output.Writer.TryComplete();
        await writer;
        await reader;
        foreach (var c in clients.Where(c => c is not null))
        {
            await c.Connection.DisposeAsync();
            await c.Driver.DisposeAsync();
        }
        return 0;
    }

    private sealed class Client(UdpDriver driver, PeerConnection connection)
    {
        private TaskCompletionSource? _echo;
        public UdpDriver Driver { get; } = driver;
        public PeerConnection Connection { get; } = connection;
        public DataChannel? Channel { get; set; }
        public Task? Loop { get; set; }

        public async Task RunAsync()
        {
            try
            {
                await foreach (var e in Connection.Events.ReadAllAsync())
                    if (e is DataChannelMessageReceived) Volatile.Read(ref _echo)?.TrySetResult();
            }
            catch (Exception e) when (e is InvalidOperationException or ObjectDisposedException) { }
        }

        public async Task<double> PingAsync()
        {
            var echo = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            Volatile.Write(ref _echo, echo);
            var clock = Stopwatch.StartNew();
            try
            {
                await Connection.SendAsync(Channel!, new byte[64]);
                await echo.Task.WaitAsync(ScaleRun.Patience);
                return clock.Elapsed.TotalMilliseconds;
            }
            catch (Exception e) when (e is TimeoutException or InvalidOperationException) { return -1; }
        }
    }

    /// <summary>
    /// The system clock, but not the system provider itself: the driver then gives each peer a pool timer instead of a
    /// deadline thread per driver.
    /// </summary>
    private sealed class PoolTimers : TimeProvider;
}
