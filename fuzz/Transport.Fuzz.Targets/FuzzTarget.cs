using System.Buffers.Binary;

namespace Transport.Fuzz;

/// <summary>One fuzz target: bytes from the network into one entry point.</summary>
/// <param name="Name">The name used by fuzz/run.sh and as the folder under fuzz/corpus and fuzz/crashes.</param>
/// <param name="Run">Feeds one input. Any exception escaping it is a crash (bad input is refused by the code under test without one, or with the documented
/// exception type, which the target catches).</param>
/// <param name="Description">What the target drives.</param>
public sealed record FuzzTarget(string Name, FuzzTarget.Input Run, string Description)
{
    /// <summary>The entry point of a target.</summary>
    public delegate void Input(ReadOnlySpan<byte> data);
}

/// <summary>
/// A stateful target found its core in a broken state after the input: no exception escaped, but a real exchange that
/// must still work after garbage did not. Treated as a crash (the fuzzer sees an unhandled exception).
/// </summary>
public sealed class FuzzPropertyException(string message) : Exception(message);

/// <summary>Every target, by name.</summary>
public static class FuzzTargets
{
    /// <summary>All targets in a fixed order.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        .. StunIceTargets.All,
        .. DtlsTargets.All,
        .. SctpTargets.All,
        .. RtpTargets.All,
        .. SignalingTargets.All,
        .. PeerTargets.All,
    ];

    /// <summary>The target of that name, or null.</summary>
    public static FuzzTarget? Find(string name) => All.FirstOrDefault(t => t.Name == name);
}

/// <summary>
/// Splits one fuzz input into several datagrams for the stateful targets: each record is a 2-byte big-endian length
/// and that many bytes (the last record takes what is left when it is short). At most <see cref="MaxRecords"/>.
/// </summary>
public static class FuzzRecords
{
    /// <summary>Records read from one input at most (bounds the work of one input).</summary>
    public const int MaxRecords = 64;

    /// <summary>The records of <paramref name="data"/> as slices.</summary>
    public static List<(int Offset, int Length)> Split(ReadOnlySpan<byte> data)
    {
        var list = new List<(int, int)>();
        var o = 0;
        while (o < data.Length && list.Count < MaxRecords)
        {
            if (data.Length - o < 2) { list.Add((o, data.Length - o)); break; }
            var n = BinaryPrimitives.ReadUInt16BigEndian(data[o..]);
            o += 2;
            var take = Math.Min(n, data.Length - o);
            list.Add((o, take));
            o += take;
        }
        return list;
    }

    /// <summary>Joins datagrams into one input in the form <see cref="Split"/> reads (for the seed corpus).</summary>
    public static byte[] Join(IEnumerable<byte[]> datagrams, int maxRecords = MaxRecords)
    {
        var buffer = new MemoryStream();
        var count = 0;
        foreach (var d in datagrams)
        {
            if (count++ >= maxRecords) break;
            var n = Math.Min(d.Length, ushort.MaxValue);
            buffer.WriteByte((byte)(n >> 8));
            buffer.WriteByte((byte)n);
            buffer.Write(d, 0, n);
        }
        return buffer.ToArray();
    }
}
