using Transport.Samples.EchoServer;

EchoServerSettings settings;
try
{
    settings = EchoServerSettings.Parse(args);
}
catch (Exception e) when (e is ArgumentException or FormatException or System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine("EchoServer: " + e.Message);
    return 2;
}
if (settings.SelfTest) return await SelfTest.RunAsync(settings, Console.Out);
var instance = EchoServerApp.Build(settings);
Console.WriteLine($"EchoServer: open {settings.Urls}/ in a browser; WebRTC media on UDP {string.Join(", ", instance.Driver.LocalEndPoints)}");
await instance.App.RunAsync();
return 0;
