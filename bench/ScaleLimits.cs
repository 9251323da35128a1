using System.Globalization;

namespace Transport.Bench;

/// <summary>
/// What a <see cref="ScaleRun"/> client process may hold on this machine: its open-descriptor limit (the hard
/// <c>RLIMIT_NOFILE</c>, to which the .NET runtime raises the soft one at start) and the ephemeral port range its
/// sockets are bound from. Each client connection holds one UDP socket, two when its ICE-TCP listener is on; a child
/// that passed the descriptor limit died ("Out of memory." from the runtime) instead of reporting it, so the run
/// computes how many children it needs and refuses a split that would not fit, with the numbers.
/// </summary>
internal static class ScaleLimits
{
    /// <summary>
    /// Descriptors a client process holds besides its connections' sockets: the runtime's (epoll, eventfds, pipes,
    /// loaded libraries), standard streams, and the warm-up's 16 client drivers and server driver (closed before the
    /// measured set-ups, kept here as a margin). Measured: about 120 at the first measured set-up.
    /// </summary>
    public const int ReservedDescriptors = 512;

    /// <summary>The hard limit of open descriptors (<c>Max open files</c> of /proc/self/limits); null where not known.</summary>
    public static long? DescriptorLimit()
    {
        try
        {
            foreach (var line in File.ReadLines("/proc/self/limits"))
            {
                if (!line.StartsWith("Max open files", StringComparison.Ordinal)) continue;
                var fields = line["Max open files".Length..].Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (fields.Length >= 2 && long.TryParse(fields[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var hard)) return hard;
                return fields.Length >= 2 && fields[1] == "unlimited" ? long.MaxValue : null;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>The number of ports in <c>net.ipv4.ip_local_port_range</c>; null where not known.</summary>
    public static int? EphemeralPorts()
    {
        try
        {
            var f = File.ReadAllText("/proc/sys/net/ipv4/ip_local_port_range").Split((char[])[' ', '\t', '\n'], StringSplitOptions.RemoveEmptyEntries);
            return f.Length == 2 ? int.Parse(f[1], CultureInfo.InvariantCulture) - int.Parse(f[0], CultureInfo.InvariantCulture) + 1 : null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or FormatException) { return null; }
    }

    /// <summary>Client connections one child can hold within <paramref name="descriptorLimit"/> at <paramref name="socketsPerConnection"/> each.</summary>
    public static long ConnectionsPerChild(long descriptorLimit, int socketsPerConnection) =>
        Math.Max(0, descriptorLimit - ReservedDescriptors) / socketsPerConnection;

    /// <summary>
    /// The children the run needs (at least <paramref name="requested"/> when given, else the fewest that fit, and at
    /// least one per 10,000 connections as before), or the reason it cannot run as asked.
    /// </summary>
    public static (int Children, string? Refusal) Children(int count, int? requested, int socketsPerConnection, long? descriptorLimit, int? ports)
    {
        var perChildCapacity = descriptorLimit is { } limit ? ConnectionsPerChild(limit, socketsPerConnection) : long.MaxValue;
        if (ports is { } p) perChildCapacity = Math.Min(perChildCapacity, Math.Max(0, p - 1000));   // each child binds its own loopback address
        if (perChildCapacity <= 0)
            return (0, $"a client process can hold no connection: descriptor limit {descriptorLimit}, {ReservedDescriptors} reserved");
        var fewest = (int)Math.Max(Math.Max(1, (count + 9_999) / 10_000), (count + perChildCapacity - 1) / perChildCapacity);
        if (requested is not { } children) return (fewest, null);
        if (children < 1) return (0, "--children must be at least 1");
        var perChild = (count + children - 1) / children;
        if (perChild <= perChildCapacity) return (children, null);
        return (0, string.Create(CultureInfo.InvariantCulture,
            $"{count} connections in {children} client process(es) is {perChild} per process, {(long)perChild * socketsPerConnection + ReservedDescriptors} " +
            $"descriptors ({socketsPerConnection} socket(s) per connection + {ReservedDescriptors} reserved) " +
            $"against the limit of {descriptorLimit?.ToString(CultureInfo.InvariantCulture) ?? "?"} " +
            $"(ulimit -Hn){(ports is { } q ? $" and {q} ephemeral ports" : "")}: at most {perChildCapacity} per process; use --children {fewest} or more"));
    }
}
