using Transport.Samples.EchoServer;

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
var (app, _) = EchoServerApp.Build(settings);
await app.RunAsync();
return 0;
