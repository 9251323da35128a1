using Microsoft.Extensions.Configuration;
using Transport.Samples.EchoServer;

// Configuration first (appsettings.json in the working directory, environment WebRtc__...), the command line over it.
var configuration = new ConfigurationBuilder()
    .SetBasePath(Directory.GetCurrentDirectory())
    .AddJsonFile("appsettings.json", optional: true)
    .AddEnvironmentVariables()
    .Build();
EchoServerSettings settings;
try
{
    settings = EchoServerSettings.Parse(args, configuration);
}
catch (Exception e) when (e is ArgumentException or FormatException or OverflowException or System.Net.Sockets.SocketException)
{
    Console.Error.WriteLine("EchoServer: " + e.Message);
    return 2;
}
if (settings.SelfTest) return await SelfTest.RunAsync(settings, Console.Out);
var instance = EchoServerApp.Build(settings);
Console.WriteLine($"EchoServer: open {settings.Urls}/ in a browser; WebRTC media on UDP {string.Join(", ", instance.Driver.LocalEndPoints)}");
if (instance.Driver.IceTcpEndPoints.Count > 0)
    Console.WriteLine($"EchoServer: ICE-TCP (RFC 6544, passive) on TCP {string.Join(", ", instance.Driver.IceTcpEndPoints)}");
await instance.App.RunAsync();
return 0;
