using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// Debian's Firefox ESR (/usr/bin/firefox-esr, installed by test.sh) started headless inside a
/// <see cref="NetworkNamespace"/> with a fresh profile (../shared/INTEROP.md): loopback ICE candidates on, no mDNS
/// obfuscation, fake media, no updates or background services. Firefox finds its default address by connecting a
/// UDP socket towards a public address, so the namespace gets a default route onto <c>lo</c> (nothing leaves it).
/// There is no remote protocol: the page reports its results by HTTP to a server the test runs in the namespace.
/// Started through <c>setsid</c>, so Firefox and every process it spawns (content, socket, RDD, utility) form a process
/// group of their own that <see cref="KillProcessGroup"/> SIGKILLs at once; the group is also killed, and the profile
/// deleted, on dispose.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class HeadlessFirefox : IDisposable
{
    private const int SigKill = 9;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int sig);

    [LibraryImport("libc")]
    private static partial int getpgrp();

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

    /// <summary>Firefox's main process id, which is also its process group id (setsid).</summary>
    public int ProcessId => _process.Id;

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
        // ip netns exec and setsid both exec (the child of Process.Start is no group leader, so setsid does not fork): the
        // pid we hold is Firefox's, and the group it leads holds all its children.
        foreach (var a in (string[])["netns", "exec", ns.Name, "setsid", ExecutablePath, "--headless", "--no-remote", "--new-instance",
            "--profile", profile, url])
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

    /// <summary>
    /// SIGKILLs Firefox's whole process group at once (nothing is closed politely: no SCTP ABORT, no DTLS close_notify),
    /// then any Firefox process left in <paramref name="ns"/> that left the group, and waits (bounded by
    /// <paramref name="patience"/>) until all are gone.
    /// </summary>
    public void KillProcessGroup(NetworkNamespace ns, TimeSpan patience)
    {
        ArgumentNullException.ThrowIfNull(ns);
        // The group first, before anything slow (listing the namespace's processes starts a program).
        var group = _process.HasExited ? -1 : ProcessGroupOf(_process.Id);
        // Never the test host's own group: only a group that Firefox leads (setsid worked) is killed as a group.
        if (group == _process.Id && group != getpgrp()) kill(-group, SigKill);
        foreach (var pid in ProcessesIn(ns)) kill(pid, SigKill);
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < patience && (!_process.HasExited || ProcessesIn(ns).Count > 0)) Thread.Sleep(5);
    }

    /// <summary>The pids of the Firefox processes (main and children) in <paramref name="ns"/>, zombies excluded.</summary>
    public static IReadOnlyList<int> ProcessesIn(NetworkNamespace ns)
    {
        ArgumentNullException.ThrowIfNull(ns);
        using var p = Process.Start(new ProcessStartInfo("ip", $"netns pids {ns.Name}") { RedirectStandardOutput = true, UseShellExecute = false })
            ?? throw new InvalidOperationException("could not start ip");
        var text = p.StandardOutput.ReadToEnd();
        if (!p.WaitForExit(10_000)) { p.Kill(); throw new InvalidOperationException("ip netns pids hung"); }
        var pids = new List<int>();
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(line, out var pid) || pid == Environment.ProcessId) continue;
            try
            {
                if (File.ReadAllText($"/proc/{pid}/cmdline").Contains("firefox", StringComparison.Ordinal)
                    && File.ReadAllText($"/proc/{pid}/stat").Split(") ", 2) is [_, var rest] && !rest.StartsWith('Z'))
                    pids.Add(pid);
            }
            catch (IOException) { }                  // gone meanwhile
            catch (UnauthorizedAccessException) { }
        }
        return pids;
    }

    // Field 5 of /proc/PID/stat (after the parenthesised command name): the process group id.
    private static int ProcessGroupOf(int pid)
    {
        try { return File.ReadAllText($"/proc/{pid}/stat").Split(") ", 2) is [_, var rest] && int.TryParse(rest.Split(' ')[2], out var g) ? g : -1; }
        catch (IOException) { return -1; }
    }

    public void Dispose()
    {
        try
        {
            var group = _process.HasExited ? -1 : ProcessGroupOf(_process.Id);
            if (group == _process.Id && group != getpgrp()) kill(-group, SigKill);
        }
        catch (InvalidOperationException) { }
        try { if (!_process.HasExited) _process.Kill(entireProcessTree: true); }
        catch (InvalidOperationException) { }
        _process.WaitForExit(10_000);
        _process.Dispose();
        try { Directory.Delete(_profile, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
