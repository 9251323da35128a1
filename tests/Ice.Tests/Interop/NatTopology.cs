using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Runtime.Versioning;
using System.Text;

namespace Transport.Ice.Tests.Interop;

/// <summary>
/// Three Linux network namespaces the test makes itself (../shared/INTEROP.md: traffic only to addresses inside
/// namespaces the test made): "private" (10.77.x.2, the agent's side), "nat" (a router that masquerades what leaves
/// its public interface, nftables) and "public" (192.168.77.2, where a server runs). Sockets of the test process
/// are created inside a namespace on a thread that joined it with setns (<see cref="CreateInside{T}"/>): a
/// socket stays in the namespace it was made in. Everything is deleted on <see cref="Dispose"/>, also after a
/// failure in the middle of the setup. Needs root and the Debian packages iproute2 and nftables.
/// </summary>
[SupportedOSPlatform("linux")]
internal sealed partial class NatTopology : IDisposable
{
    private const int CloneNewNet = 0x40000000;
    public const string Nft = "/usr/sbin/nft";

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    private readonly List<string> _namespaces = new();

    public string Private { get; }
    public string Nat { get; }
    public string Public { get; }
    public System.Net.IPAddress PrivateAddress { get; } = System.Net.IPAddress.Parse("10.77.1.2");
    public System.Net.IPAddress NatPublicAddress { get; } = System.Net.IPAddress.Parse("192.168.77.1");
    public System.Net.IPAddress PublicAddress { get; } = System.Net.IPAddress.Parse("192.168.77.2");

    public NatTopology()
    {
        if (!File.Exists(Nft)) throw new InvalidOperationException($"{Nft} is missing: install the Debian package 'nftables' (apt-get install -y nftables).");
        var id = $"{Environment.ProcessId}-{Guid.NewGuid().ToString("N")[..6]}";
        Private = $"ice-priv-{id}";
        Nat = $"ice-nat-{id}";
        Public = $"ice-pub-{id}";
        try
        {
            foreach (var ns in new[] { Private, Nat, Public })
            {
                Run("ip", "netns", "add", ns);
                _namespaces.Add(ns);
                Run("ip", "-n", ns, "link", "set", "lo", "up");
            }
            // The veth pairs are made inside the namespaces, so their names cannot clash with anything else.
            Run("ip", "-n", Nat, "link", "add", "in0", "type", "veth", "peer", "name", "eth0", "netns", Private);
            Run("ip", "-n", Nat, "link", "add", "out0", "type", "veth", "peer", "name", "eth0", "netns", Public);
            Run("ip", "-n", Private, "addr", "add", "10.77.1.2/24", "dev", "eth0");
            Run("ip", "-n", Private, "link", "set", "eth0", "up");
            Run("ip", "-n", Private, "route", "add", "default", "via", "10.77.1.1");
            Run("ip", "-n", Nat, "addr", "add", "10.77.1.1/24", "dev", "in0");
            Run("ip", "-n", Nat, "addr", "add", "192.168.77.1/24", "dev", "out0");
            Run("ip", "-n", Nat, "link", "set", "in0", "up");
            Run("ip", "-n", Nat, "link", "set", "out0", "up");
            Run("ip", "-n", Public, "addr", "add", "192.168.77.2/24", "dev", "eth0");
            Run("ip", "-n", Public, "link", "set", "eth0", "up");
            // /proc/sys/net belongs to the namespace of the process that writes it (no procps needed).
            Run("ip", "netns", "exec", Nat, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward");
            // Source NAT of everything that leaves towards the public side: the private address never reaches it.
            Run("ip", "netns", "exec", Nat, Nft, "add", "table", "ip", "nat");
            Run("ip", "netns", "exec", Nat, Nft, "add", "chain", "ip", "nat", "post", "{ type nat hook postrouting priority 100 ; }");
            Run("ip", "netns", "exec", Nat, Nft, "add", "rule", "ip", "nat", "post", "oifname", "out0", "masquerade");
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>Runs <paramref name="create"/> on a fresh thread that joined namespace <paramref name="ns"/>, and returns its result.</summary>
    public static T CreateInside<T>(string ns, Func<T> create)
    {
        T result = default!;
        Exception? error = null;
        var thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle($"/var/run/netns/{ns}");
                if (setns((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                    throw new InvalidOperationException($"setns({ns}) failed with errno {Marshal.GetLastPInvokeError()}");
                result = create();
            }
            catch (Exception e) { error = e; }
        })
        { IsBackground = true, Name = "netns " + ns };
        thread.Start();
        if (!thread.Join(TimeSpan.FromSeconds(30))) throw new TimeoutException("Creating inside the namespace took over 30 s.");
        if (error is not null) throw new InvalidOperationException("Creating inside the namespace failed: " + error.Message, error);
        return result;
    }

    /// <summary>
    /// Starts <paramref name="executable"/> inside namespace <paramref name="ns"/> (ip netns exec replaces itself with it: the process id is the program's).
    /// </summary>
    public static Process StartInside(string ns, string executable, IEnumerable<string> arguments, StringBuilder output)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "netns", "exec", ns, executable }.Concat(arguments)) info.ArgumentList.Add(a);
        var process = Process.Start(info) ?? throw new InvalidOperationException($"could not start {executable}");
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return process;
    }

    public void Dispose()
    {
        // Deleting a namespace deletes its end of each veth pair, and so the pair.
        foreach (var ns in _namespaces)
        {
            try { Run("ip", "netns", "del", ns); } catch (InvalidOperationException) { }
        }
        _namespaces.Clear();
    }

    public static bool Exists(string ns) => File.Exists($"/var/run/netns/{ns}");

    private static void Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardError = true, RedirectStandardOutput = true, UseShellExecute = false };
        foreach (var a in args) info.ArgumentList.Add(a);
        using var p = Process.Start(info) ?? throw new InvalidOperationException($"could not start {file}");
        var stderr = p.StandardError.ReadToEndAsync();
        if (!p.WaitForExit(10_000)) { p.Kill(); throw new InvalidOperationException($"{file} {string.Join(' ', args)} hung"); }
        if (p.ExitCode != 0) throw new InvalidOperationException($"{file} {string.Join(' ', args)} failed ({p.ExitCode}): {stderr.Result}");
    }
}
