using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;

namespace Transport.Streaming.Tests.Interop;

/// <summary>
/// A Linux network namespace that the test makes itself, with only <c>lo</c> up (../shared/INTEROP.md): a browser
/// started inside it can reach nothing but 127.0.0.1 of the namespace. Sockets of the test process are put inside
/// by creating them on a thread that joined the namespace (<see cref="CreateInside{T}"/>): a socket stays in the
/// namespace it was created in, whichever thread uses it later. Deleted on dispose.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed partial class NetworkNamespace : IDisposable
{
    private const int CloneNewNet = 0x40000000;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    private NetworkNamespace(string name) => Name = name;

    /// <summary>The namespace's name (unique per test run).</summary>
    public string Name { get; }

    /// <summary>Creates a namespace with only loopback up. Needs root (available on these machines and in CI).</summary>
    public static NetworkNamespace Create(string prefix = "rtc-test")
    {
        var name = $"{prefix}-{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
        try { Run("ip", $"netns add {name}"); }
        catch (InvalidOperationException e)
        {
            throw new InvalidOperationException("Cannot create a network namespace (the network tests need root or " +
                "CAP_NET_ADMIN, and iproute2): " + e.Message, e);
        }
        var ns = new NetworkNamespace(name);
        try { Run("ip", $"-n {name} link set lo up"); }
        catch { ns.Dispose(); throw; }
        return ns;
    }

    /// <summary>Runs <paramref name="create"/> on a fresh thread that joined this namespace, and returns its result.</summary>
    public T CreateInside<T>(Func<T> create)
    {
        ArgumentNullException.ThrowIfNull(create);
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{Name}");
                if (setns((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new InvalidOperationException($"setns({Name}) failed with errno {Marshal.GetLastPInvokeError()}");
                result = create();
            }
            catch (Exception e) { error = e; }
        })
        { IsBackground = true, Name = "netns " + Name };
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(30))) throw new TimeoutException("Creating inside the namespace took over 30 s.");
        if (error is not null) throw new InvalidOperationException("Creating inside the namespace failed: " + error.Message, error);
        return result;
    }

    /// <summary>A shell script that runs <paramref name="executable"/> inside the namespace with the arguments it is given.</summary>
    public string WrapperFor(string executable)
    {
        var path = Path.Combine(Path.GetTempPath(), $"{Name}-{Path.GetFileName(executable)}.sh");
        File.WriteAllText(path, $"#!/bin/sh\nexec ip netns exec {Name} {executable} \"$@\"\n");
        File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        _wrappers.Add(path);
        return path;
    }

    private readonly List<string> _wrappers = new();
    private bool _defaultRoute;

    /// <summary>
    /// Adds a default route onto <c>lo</c> (source 127.0.0.1): Firefox finds its default address by connecting a UDP
    /// socket towards a public address and gathers nothing without a route (INTEROP.md). Nothing leaves the
    /// namespace, which has no other interface. Idempotent.
    /// </summary>
    public void AddDefaultRouteOnLoopback()
    {
        if (_defaultRoute) return;
        Run("ip", $"-n {Name} route add default dev lo src 127.0.0.1");
        _defaultRoute = true;
    }

    /// <summary>
    /// Joins this namespace and <paramref name="other"/> by a veth pair (<c>veth-a</c> here, <c>veth-b</c> there; the
    /// names are the namespaces' own, so parallel tests do not collide), with <paramref name="address"/> and
    /// <paramref name="otherAddress"/> on a /24 and both ends up: two machines on one link, no loopback between them.
    /// The pair goes with the namespaces. Needs CAP_NET_ADMIN, like <see cref="Create"/>.
    /// </summary>
    public void ConnectVeth(NetworkNamespace other, string address, string otherAddress, string name = "veth-a", string otherName = "veth-b")
    {
        ArgumentNullException.ThrowIfNull(other);
        Run("ip", $"-n {Name} link add {name} type veth peer name {otherName} netns {other.Name}");
        Run("ip", $"-n {Name} addr add {address}/24 dev {name}");
        Run("ip", $"-n {other.Name} addr add {otherAddress}/24 dev {otherName}");
        Run("ip", $"-n {Name} link set {name} up");
        Run("ip", $"-n {other.Name} link set {otherName} up");
    }

    /// <summary>
    /// Runs <paramref name="file"/> with <paramref name="args"/> inside the namespace (<c>ip netns exec</c>); throws with its stderr when it fails.
    /// </summary>
    public void Exec(string file, params string[] args) => Run("ip", $"netns exec {Name} {file} {string.Join(' ', args)}");

    /// <summary>
    /// A default route through <paramref name="gateway"/> (on a veth link): as a machine on a network has one. Chromium gathers its host candidates from the
    /// interfaces a route goes through.
    /// </summary>
    public void AddDefaultRoute(string gateway) => Run("ip", $"-n {Name} route add default via {gateway}");

    public void Dispose()
    {
        foreach (var w in _wrappers) { try { File.Delete(w); } catch (IOException) { } }
        try { Run("ip", $"netns del {Name}"); } catch (InvalidOperationException) { }
    }

    private static void Run(string file, string args)
    {
        using var p = Process.Start(new ProcessStartInfo(file, args) { RedirectStandardError = true, UseShellExecute = false })
            ?? throw new InvalidOperationException($"could not start {file}");
        if (!p.WaitForExit(10_000)) { p.Kill(); throw new InvalidOperationException($"{file} {args} hung"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {args} failed: {p.StandardError.ReadToEnd()}");
    }
}
