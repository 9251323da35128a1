using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace Transport.Streaming.Io;

/// <summary>
/// Which of the host's addresses <see cref="HostAddresses.Enumerate"/> (and <see cref="UdpDriver.BindAll"/>) takes.
/// The defaults give every address a remote peer could reach: the unicast addresses of the interfaces that are up,
/// without IPv6 link-local ones (they need a scope and are reachable only on their link) and without loopback unless
/// nothing else is there.
/// </summary>
public sealed record HostAddressOptions
{
    /// <summary>
    /// Only these addresses (each must be one of the host's, up). Empty (default): every address the other options
    /// allow. An unspecified address (0.0.0.0, ::) stands for every address of its family.
    /// </summary>
    public IReadOnlyList<IPAddress> Addresses { get; init; } = [];

    /// <summary>Only the interfaces of these names (<c>eth0</c>, <c>veth1</c>). Empty (default): every interface.</summary>
    public IReadOnlyList<string> Interfaces { get; init; } = [];

    /// <summary>
    /// Loopback addresses (127.0.0.0/8, ::1) are taken too. Default false: they are taken only when the host has no
    /// other address, so a machine with no network still serves its own browser.
    /// </summary>
    public bool IncludeLoopback { get; init; }

    /// <summary>IPv6 link-local addresses (fe80::/10) and IPv4 link-local ones (169.254.0.0/16) are taken too. Default false.</summary>
    public bool IncludeLinkLocal { get; init; }

    /// <summary>IPv6 addresses are taken. Default true.</summary>
    public bool IncludeIPv6 { get; init; } = true;

    /// <summary>IPv4 addresses are taken. Default true.</summary>
    public bool IncludeIPv4 { get; init; } = true;
}

/// <summary>The host's own unicast addresses, the ones its host ICE candidates are made of.</summary>
public static class HostAddresses
{
    /// <summary>
    /// The unicast addresses of the interfaces that are up, filtered by <paramref name="options"/>, without duplicates:
    /// the ones <see cref="HostAddressOptions.Addresses"/> names in that order, then the others in the order the
    /// system lists them, IPv4 before IPv6. Empty when nothing fits.
    /// </summary>
    public static IReadOnlyList<IPAddress> Enumerate(HostAddressOptions? options = null) =>
        Select(ReadInterfaces(), options ?? new HostAddressOptions());

    /// <summary>
    /// The addresses that ASP.NET Core style <paramref name="urls"/> (<c>http://10.0.0.5:8080;http://[::1]:8081</c>)
    /// name, for binding the media port where the web server listens: IP literals, and <c>localhost</c> as 127.0.0.1.
    /// Empty (every address) when any URL names a wildcard (<c>0.0.0.0</c>, <c>[::]</c>, <c>*</c>, <c>+</c>) or a
    /// host name.
    /// </summary>
    public static IReadOnlyList<IPAddress> NamedByUrls(string urls)
    {
        ArgumentNullException.ThrowIfNull(urls);
        var named = new List<IPAddress>();
        foreach (var url in urls.Split(';', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var start = url.IndexOf("://", StringComparison.Ordinal);
            var rest = start < 0 ? url : url[(start + 3)..];
            var end = rest.IndexOf('/', StringComparison.Ordinal);
            if (end >= 0) rest = rest[..end];
            string host;
            if (rest.StartsWith('[')) host = rest[1..Math.Max(1, rest.IndexOf(']', StringComparison.Ordinal))];
            else host = rest.LastIndexOf(':') is var colon and >= 0 ? rest[..colon] : rest;
            if (host.Equals("localhost", StringComparison.OrdinalIgnoreCase)) { Add(named, IPAddress.Loopback); continue; }
            if (!IPAddress.TryParse(host, out var address) || address.Equals(IPAddress.Any) || address.Equals(IPAddress.IPv6Any)) return [];
            Add(named, address);
        }
        return named;
    }

    /// <summary>One interface's name, whether it is up and its unicast addresses (the input of <see cref="Select"/>).</summary>
    public sealed record Interface(string Name, bool IsUp, bool IsLoopback, IReadOnlyList<IPAddress> Addresses);

    /// <summary>The system's interfaces as <see cref="Select"/> reads them.</summary>
    public static IReadOnlyList<Interface> ReadInterfaces()
    {
        var list = new List<Interface>();
        foreach (var nic in NetworkInterface.GetAllNetworkInterfaces())
        {
            IReadOnlyList<IPAddress> addresses;
            try { addresses = nic.GetIPProperties().UnicastAddresses.Select(u => u.Address).ToArray(); }
            catch (NetworkInformationException) { continue; }
            // Linux reports "Unknown" for some virtual devices (veth, tun) that are up and carry traffic: only Down is taken as
            // down, and not even Down when the interface was set up (IFF_UP): the kernel updates the operational state
            // asynchronously (its link watch runs up to a second after the carrier comes), so an interface brought up
            // just before the server starts can read Down while its address already works.
            var up = nic.OperationalStatus != OperationalStatus.Down || AdministrativelyUp(nic.Name);
            list.Add(new Interface(nic.Name, up, nic.NetworkInterfaceType == NetworkInterfaceType.Loopback, addresses));
        }
        return list;
    }

    // Linux: /sys/class/net/NAME/flags holds the interface flags in hex; IFF_UP is bit 0 (linux/if.h).
    private static bool AdministrativelyUp(string name)
    {
        if (!OperatingSystem.IsLinux() || name.Contains('/', StringComparison.Ordinal) || name.Contains("..", StringComparison.Ordinal)) return false;
        try
        {
            var text = File.ReadAllText($"/sys/class/net/{name}/flags").Trim();
            if (text.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) text = text[2..];
            return long.TryParse(text, System.Globalization.NumberStyles.HexNumber,
                System.Globalization.CultureInfo.InvariantCulture, out var flags) && (flags & 1) != 0;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { return false; }
    }

    /// <summary>The addresses <paramref name="options"/> takes from <paramref name="interfaces"/> (pure: tests feed it their own).</summary>
    public static IReadOnlyList<IPAddress> Select(IReadOnlyList<Interface> interfaces, HostAddressOptions options)
    {
        ArgumentNullException.ThrowIfNull(interfaces);
        ArgumentNullException.ThrowIfNull(options);
        var wanted = options.Addresses;
        var anyV4 = wanted.Any(a => a.Equals(IPAddress.Any));
        var anyV6 = wanted.Any(a => a.Equals(IPAddress.IPv6Any));
        var specific = wanted.Where(a => !a.Equals(IPAddress.Any) && !a.Equals(IPAddress.IPv6Any)).ToArray();
        var result = new List<IPAddress>();
        var loopback = new List<IPAddress>();
        foreach (var nic in interfaces)
        {
            if (!nic.IsUp) continue;
            if (options.Interfaces.Count > 0 && !options.Interfaces.Contains(nic.Name, StringComparer.Ordinal)) continue;
            foreach (var address in nic.Addresses)
            {
                if (wanted.Count > 0)
                {
                    // Asked for by name: taken as it is (loopback and link-local too), as long as the host has it.
                    if (specific.Any(a => a.Equals(address))) { Add(result, address); continue; }
                    var family = address.AddressFamily == AddressFamily.InterNetwork ? anyV4 : anyV6;
                    if (!family) continue;
                }
                if (!Usable(address, options)) continue;
                if (nic.IsLoopback || IPAddress.IsLoopback(address)) { if (!loopback.Contains(address)) loopback.Add(address); continue; }
                Add(result, address);
            }
        }
        if (options.IncludeLoopback || result.Count == 0) foreach (var a in loopback) Add(result, a);
        // Addresses named in the options in their order, then IPv4 before IPv6: the first host candidate gets the
        // highest local preference.
        return result.OrderBy(a => Array.FindIndex(specific, a.Equals) is var i and >= 0 ? i : int.MaxValue)
            .ThenBy(a => a.AddressFamily == AddressFamily.InterNetwork ? 0 : 1).ToArray();
    }

    private static void Add(List<IPAddress> list, IPAddress address)
    {
        if (!list.Contains(address)) list.Add(address);
    }

    private static bool Usable(IPAddress address, HostAddressOptions options)
    {
        if (address.IsIPv4MappedToIPv6) return false;
        switch (address.AddressFamily)
        {
            case AddressFamily.InterNetwork:
                if (!options.IncludeIPv4) return false;
                var b = address.GetAddressBytes();
                if (b[0] == 0 || b[0] >= 224) return false; // unspecified, multicast, reserved, broadcast
                if (b[0] == 169 && b[1] == 254 && !options.IncludeLinkLocal) return false;
                return true;
            case AddressFamily.InterNetworkV6:
                if (!options.IncludeIPv6) return false;
                if (address.IsIPv6Multicast || address.Equals(IPAddress.IPv6Any)) return false;
                if (address.IsIPv6LinkLocal && !options.IncludeLinkLocal) return false;
                return true;
            default:
                return false;
        }
    }
}
