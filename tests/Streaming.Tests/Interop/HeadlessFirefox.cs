using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.Versioning;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Debian's Firefox ESR (/usr/bin/firefox-esr, installed by test.sh) started headless inside a
/// <see cref="NetworkNamespace"/> with a fresh profile (../shared/INTEROP.md): loopback ICE candidates on, no mDNS
/// obfuscation, fake media, no updates or background services. Firefox finds its default address by connecting a
/// UDP socket towards a public address, so the namespace gets a default route onto <c>lo</c> (nothing leaves it).
/// There is no remote protocol: the page reports its results by HTTP to a server the test runs in the namespace.
/// Killed by its process id and its profile deleted on dispose.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class HeadlessFirefox : IDisposable
{
    public const string ExecutablePath = "/usr/bin/firefox-esr";

    // Each line a user_pref; see INTEROP.md for why each is needed.
    private static readonly string[] Preferences =
    [
        "media.navigator.streams.fake\", true", "media.navigator.permission.disabled\", true",
        "media.peerconnection.ice.loopback\", true", "media.peerconnection.ice.obfuscate_host_addresses\", false",
        "media.peerconnection.ice.default_address_only\", false", "media.peerconnection.ice.link_local\", true",
        "media.autoplay.default\", 0", "network.proxy.type\", 0", "app.update.enabled\", false",
        "app.update.auto\", false", "browser.shell.checkDefaultBrowser\", false", "datareporting.policy.dataSubmissionEnabled\", false",
        "toolkit.telemetry.enabled\", false", "browser.safebrowsing.malware.enabled\", false",
        "browser.safebrowsing.phishing.enabled\", false", "extensions.update.enabled\", false",
        "browser.startup.homepage_override.mstone\", \"ignore\"", "network.captive-portal-service.enabled\", false",
        "network.connectivity-service.enabled\", false", "browser.aboutwelcome.enabled\", false",
        "dom.disable_open_during_load\", false", "browser.tabs.remote.autostart\", true",
    ];

    private readonly Process _process;
    private readonly string _profile;

    private HeadlessFirefox(Process process, string profile)
    {
        _process = process;
        _profile = profile;
    }

    /// <summary>Firefox's stdout and stderr lines (its own diagnostics, not the page's console).</summary>
    public ConcurrentQueue<string> Output { get; } = new();

    /// <summary>Whether the process is still running.</summary>
    public bool IsRunning => !_process.HasExited;

    /// <summary>Starts Firefox inside <paramref name="ns"/> on <paramref name="url"/>. Extra user_pref lines may be given.</summary>
    public static HeadlessFirefox Launch(NetworkNamespace ns, string url, params string[] extraPreferences)
    {
        ArgumentNullException.ThrowIfNull(ns);
        if (!File.Exists(ExecutablePath))
            throw new InvalidOperationException($"{ExecutablePath} is missing: ./test.sh installs Debian's firefox-esr package.");
        ns.AddDefaultRouteOnLoopback();
        var profile = Path.Combine(Path.GetTempPath(), "transport-firefox-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(profile);
        File.WriteAllLines(Path.Combine(profile, "user.js"),
            Preferences.Concat(extraPreferences).Select(p => $"user_pref(\"{p});"));
        var start = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in (string[])["netns", "exec", ns.Name, ExecutablePath, "--headless", "--no-remote", "--new-instance", "--profile", profile, url])
            start.ArgumentList.Add(a);
        start.Environment["MOZ_HEADLESS"] = "1";
        start.Environment["HOME"] = profile;   // keeps Firefox's caches away from the user's home
        var process = Process.Start(start) ?? throw new InvalidOperationException("could not start firefox-esr");
        var firefox = new HeadlessFirefox(process, profile);
        process.OutputDataReceived += (_, e) => { if (e.Data is not null && firefox.Output.Count < 2000) firefox.Output.Enqueue(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null && firefox.Output.Count < 2000) firefox.Output.Enqueue("stderr: " + e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return firefox;
    }

    public void Dispose()
    {
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
        _process.Dispose();
        try { Directory.Delete(_profile, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
