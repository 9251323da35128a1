using Transport.Samples.EchoServer;

// The UDP driver runs its receive loops, actors and timers on the shared thread pool; on a 2-core machine the pool
// starts with 2 threads and grows slowly, which delays every timer and hand-off while Kestrel also starts. Until
// the driver has its own threads (README "Not done yet"), start with enough threads (as the tests do).
ThreadPool.GetMinThreads(out var workers, out var io);
ThreadPool.SetMinThreads(Math.Max(workers, 16), Math.Max(io, 16));

EchoServerSettings settings;
try
{
    settings = EchoServerSettings.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException)
{
    Console.Error.WriteLine("EchoServer: " + e.Message);
    return 2;
}
if (settings.SelfTest) return await SelfTest.RunAsync(settings, Console.Out);
var instance = EchoServerApp.Build(settings);
Console.WriteLine($"EchoServer: open {settings.Urls}/ in a browser; WebRTC media on UDP {instance.UdpEndPoint}");
await instance.App.RunAsync();
return 0;
