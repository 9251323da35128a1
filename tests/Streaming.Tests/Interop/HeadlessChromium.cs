using System.Runtime.Versioning;
using Microsoft.Playwright;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Debian's Chromium (/usr/bin/chromium, installed by test.sh) started by Playwright inside a
/// <see cref="NetworkNamespace"/>, with the flags of ../shared/INTEROP.md. Playwright talks to it over pipes,
/// so it needs no network; the browser sees only the namespace's loopback.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class HeadlessChromium : IAsyncDisposable
{
    public const string ExecutablePath = "/usr/bin/chromium";

    private readonly IPlaywright _playwright;

    private string? _stderrWrapper;

    private HeadlessChromium(IPlaywright playwright, IBrowser browser, NetworkNamespace ns)
    {
        _playwright = playwright;
        Browser = browser;
        Namespace = ns;
    }

    public IBrowser Browser { get; }
    public NetworkNamespace Namespace { get; }

    /// <summary>
    /// A new page on http://localhost/ (a secure context, which getUserMedia needs; about:blank is not one), served by
    /// Playwright's request interception so nothing listens on the network.
    /// </summary>
    public async Task<IPage> NewSecurePageAsync(IBrowserContext? context = null)
    {
        var page = context is null ? await Browser.NewPageAsync() : await context.NewPageAsync();
        await page.RouteAsync("http://localhost/**",
            route => route.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<!doctype html><html><body></body></html>" }));
        await page.GotoAsync("http://localhost/");
        return page;
    }

    public static Task<HeadlessChromium> LaunchAsync(NetworkNamespace ns, bool fakeMedia = false, params string[] extraArgs) =>
        LaunchAsync(ns, environment: null, fakeMedia, extraArgs);

    /// <summary>As above, with environment variables for the browser (HOME, whose .pki/nssdb holds the certificates it trusts).</summary>
    public static async Task<HeadlessChromium> LaunchAsync(NetworkNamespace ns, IEnumerable<KeyValuePair<string, string>>? environment, bool fakeMedia,
        params string[] extraArgs)
    {
        if (!File.Exists(ExecutablePath))
            throw new InvalidOperationException($"{ExecutablePath} is missing: ./test.sh installs Debian's chromium package.");
        var playwright = await Playwright.CreateAsync();
        try
        {
            var args = new List<string>
            {
                "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync", "--allow-loopback-in-peer-connection",
                "--use-fake-ui-for-media-stream", "--disable-features=WebRtcHideLocalIpsWithMdns",
            };
            if (fakeMedia) args.Add("--use-fake-device-for-media-stream");
            args.AddRange(extraArgs);
            var executable = ns.WrapperFor(ExecutablePath);
            string? stderrWrapper = null;
            // CHROMIUM_STDERR=FILE (diagnostics): the browser's and its renderers' stderr (with --enable-logging=stderr,
            // their logs; WebRTC's included) appended to FILE.
            if (Environment.GetEnvironmentVariable("CHROMIUM_STDERR") is { Length: > 0 } stderrFile)
            {
                var wrapper = executable + ".stderr.sh";
                File.WriteAllText(wrapper, $"#!/bin/sh\nexec {executable} \"$@\" 2>>{stderrFile}\n");
                File.SetUnixFileMode(wrapper, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
                executable = stderrWrapper = wrapper;
            }
            var browser = await playwright.Chromium.LaunchAsync(new()
            {
                ExecutablePath = executable,
                Headless = true,
                Args = args,
                Timeout = 60_000,
                Env = environment,
            });
            return new HeadlessChromium(playwright, browser, ns) { _stderrWrapper = stderrWrapper };
        }
        catch
        {
            playwright.Dispose();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await Browser.DisposeAsync();
        _playwright.Dispose();
        if (_stderrWrapper is not null) File.Delete(_stderrWrapper);
    }
}
