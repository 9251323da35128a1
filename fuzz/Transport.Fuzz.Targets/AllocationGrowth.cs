namespace Transport.Fuzz;

/// <summary>
/// How the managed allocations of one input grow with its size, per target: a remote party must not make us allocate
/// without bound. Each target gets inputs of 64 B, 1 KiB, 16 KiB and 64 KiB made three ways from its largest seed
/// (<c>repeat</c>: the seed repeated; <c>tail</c>: for a binary seed its first half kept and its second half repeated,
/// for a text seed the lines of its last section repeated; <c>random</c>: seeded random bytes), and its largest seed
/// as it is. An input's
/// allocation is <see cref="GC.GetAllocatedBytesForCurrentThread"/> around one run (the targets are sans-IO: the run
/// is on the caller's thread), the least of three runs after a warm-up run of that input (JIT, static and lazy state).
/// The bound is <c>c + k * length</c>: c is the most the target allocated for a 64-byte input or for its largest seed
/// (its set-up: a connected pair, a core, contexts; for the WHIP offer, a whole answer) plus <see cref="Slack"/>, and k
/// the bytes per input byte the target and the code under test may allocate, stated per target with its reason
/// (<see cref="Bounds"/>). Native memory (OpenSSL) is not counted.
/// </summary>
public static class AllocationGrowth
{
    /// <summary>Input sizes measured (and the largest seed besides).</summary>
    public static readonly int[] Sizes = [64, 1024, 16 * 1024, 64 * 1024];

    /// <summary>
    /// Added to the 64-byte cost in the bound: structures whose size does not follow the input's (lists of at most 64
    /// records, a dictionary's next capacity step).
    /// </summary>
    public const long Slack = 32 * 1024;

    /// <summary>The bound of one target: at most <see cref="PerByte"/> bytes allocated per input byte beyond its set-up.</summary>
    public sealed record Bound(double PerByte, string Why);

    // The copies a target makes of its input, which the code under test does not (counted in the bounds below): the
    // record targets' ToArray per record (1 B per byte); for text, Encoding.UTF8.GetString (2 B per byte for ASCII, but
    // some 15 B per byte for random bytes: the runtime's replacement of invalid sequences; a request body read as text
    // by the hosting endpoints costs the same).
    private static Bound Binary(string why) => new(4, why);

    // Text targets: the UTF-8 decoding of invalid input (15 B per byte) and what the parser allocates.
    private const double Text = 24;

    /// <summary>Every target's bound, with its reason.</summary>
    public static IReadOnlyDictionary<string, Bound> Bounds { get; } = new Dictionary<string, Bound>(StringComparer.Ordinal)
    {
        ["stun"] = Binary(
            "a view over the span; only the string getters (USERNAME, REALM, NONCE, SOFTWARE, ALTERNATE-DOMAIN) copy, each the first attribute of " +
            "its type: at most 2 B (UTF-16) per byte"),
        ["ice-fresh"] = Binary("the target re-signs into a fixed buffer; the agent keeps no datagram, a STUN request's USERNAME at most 2 B per byte"),
        ["ice-connected"] = Binary("the target's record copies (1 B per byte); the agent as ice-fresh"),
        ["turn-channeldata"] = Binary("ChannelData is a view; the TURN client's error reason, realm and nonce strings at most 2 B per byte"),
        ["turn-tcp"] = Binary("the framing reads a view of the span or the sequence (the target's segments are reused)"),
        ["dtls-server-fresh"] = Binary("a record is decrypted or parsed in place; a handshake message is buffered once for reassembly (1 B per byte)"),
        ["dtls-handshake"] = Binary("as dtls-server-fresh"),
        ["dtls-connected"] = Binary("the target's record copies (1 B per byte); an application record is delivered as one copy"),
        ["sctp-fresh"] = Binary(
            "the target copies each record into a fixed 64 KiB buffer; a listening association keeps nothing of a packet but a cookie's state"),
        ["sctp-established"] = Binary(
            "the target's record copies (1 B per byte); DATA is kept in the receive buffer (bounded by its window) and delivered once"),
        ["dcep"] = new(6,
            "each record is sent as a message: the target's send, the sender's copy, the receiver's reassembly and the delivered copy (1 B per " +
            "byte each), and the label and protocol strings of a DATA_CHANNEL_OPEN (2 B per byte)"),
        ["rtp"] = Binary("the target's buffer for the RTX unwrap (1 B per byte); the session keeps no packet"),
        ["rtcp"] = Binary("the compound is read in place; SDES CNAME and BYE reason strings at most 2 B per byte"),
        ["srtp"] = Binary("the target's working copy (1 B per byte); protect and unprotect work in place"),
        ["srtcp"] = Binary("as srtp"),
        ["h264"] = Binary("the target's output buffer of MaxOutputLength: the payload plus a 4-byte start code per NAL unit (at most 2 B per byte)"),
        ["vp8"] = Binary("the target's output buffer of MaxOutputLength (1 B per byte)"),
        ["opus"] = Binary("the target's output buffer of MaxOutputLength (1 B per byte)"),
        ["frame-assembler"] = Binary("the assembler copies a payload once into its pending frame, the target polls each frame into a new array (2 B per byte)"),
        ["sdp"] = new(Text, "the decoding (15 B per byte for random input), the lines (2 B per byte), the parsed description, written back and parsed again"),
        ["ice-sdp"] = new(32,
            "the decoding, a string per line, then per candidate line IceCandidate.TryParse and SdpCandidate.Parse (tokens, 2 B per byte each), " +
            "the text written back and parsed again"),
        ["candidate"] = new(Text,
            "the decoding and the target's substring; a candidate over IceCandidateFields.MaxLength (1,024 characters) is refused before it is cut " +
            "into tokens"),
        ["signaling-json"] = new(8, "the control channel reader's copy of the frame (1 B per byte) and a JSON string value at most 2 B per byte"),
        ["whip-offer"] = new(Text, "as sdp; an offer that parses costs its answer (the seed: 5.7 MiB, in c)"),
        ["whip-patch"] = new(32, "as ice-sdp; each candidate added to the core is checked against the agent's candidate limit"),
        ["peer-connected"] = Binary("the target's record copies (1 B per byte); the demultiplexed cores as their own targets"),
    };

    /// <summary>One input's measurement.</summary>
    public sealed record Point(string Kind, int Length, long Bytes);

    /// <summary>One target's measurements and verdict.</summary>
    public sealed record Row(string Target, Bound Bound, IReadOnlyList<Point> Points, long SetUp, int LargestSeed)
    {
        /// <summary>The most allocated at each of <see cref="Sizes"/> (over the three kinds).</summary>
        public long At(int size) => Points.Where(p => p.Kind != "seed" && p.Length == size).Max(p => p.Bytes);

        /// <summary>The largest seed's allocation.</summary>
        public long Seed => Points.First(p => p.Kind == "seed").Bytes;

        /// <summary>Bytes per input byte from 1 KiB to 64 KiB, the steepest of the three kinds.</summary>
        public double Slope => Points.Where(p => p.Kind != "seed").GroupBy(p => p.Kind).Max(g =>
        {
            var small = g.First(p => p.Length == Sizes[1]);
            var large = g.First(p => p.Length == Sizes[^1]);
            return (double)(large.Bytes - small.Bytes) / (large.Length - small.Length);
        });

        /// <summary>The bound at <paramref name="length"/>.</summary>
        public long Limit(int length) => SetUp + Slack + (long)Math.Ceiling(Bound.PerByte * length);

        /// <summary>The inputs over the bound.</summary>
        public IEnumerable<Point> Over => Points.Where(p => p.Bytes > Limit(p.Length));

        /// <summary>A markdown table row.</summary>
        public string Line() =>
            $"| `{Target}` | {Kb(At(Sizes[0]))} | {Kb(At(Sizes[1]))} | {Kb(At(Sizes[2]))} | {Kb(At(Sizes[3]))} | {Kb(Seed)} ({LargestSeed:N0} B) | " +
            $"{Slope:0.00} | {Bound.PerByte:0.#} | {Kb(Limit(Sizes[^1]))} | {(Over.Any() ? "OVER" : "ok")} |";
    }

    /// <summary>The header of the table <see cref="Row.Line"/> writes.</summary>
    public const string Header =
        "| target | 64 B | 1 KiB | 16 KiB | 64 KiB | largest seed | B per input byte (1-64 KiB) | bound k | bound at 64 KiB | |\n" +
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |";

    private static string Kb(long bytes) => bytes < 10_000 ? $"{bytes:N0} B" : $"{bytes / 1024.0:N1} KiB";

    /// <summary>The inputs of one target: name, bytes.</summary>
    public static IEnumerable<(string Kind, byte[] Data)> Inputs(byte[] largestSeed)
    {
        var random = new Random(16);
        var text = IsText(largestSeed);
        foreach (var size in Sizes)
        {
            yield return ("repeat", Repeat(largestSeed, 0, size));
            yield return ("tail", text ? Lines(largestSeed, size) : Repeat(largestSeed, largestSeed.Length / 2, size));
            var r = new byte[size];
            random.NextBytes(r);
            yield return ("random", r);
        }
    }

    // Text (SDP, candidates, JSON): printable ASCII and line ends only.
    private static bool IsText(byte[] seed) => seed.Length > 0 && seed.All(b => b is >= 0x20 and < 0x7F or (byte)'\r' or (byte)'\n' or (byte)'\t');

    // A text seed grown by whole lines: the seed, then the lines of its last section (after its last m= line; the
    // whole seed when it has none), a=mid lines left out, over and over, to `size` bytes at most (then spaces). An
    // SDP seed so stays a description with one long last media section (many candidates, codecs, attributes): the
    // parser and the answerer do their whole work on it rather than refusing the first line.
    private static byte[] Lines(byte[] seed, int size)
    {
        var text = System.Text.Encoding.ASCII.GetString(seed);
        var start = text.LastIndexOf("\nm=", StringComparison.Ordinal);
        var section = start < 0 ? text : text[(text.IndexOf('\n', start + 1) + 1)..];
        var lines = section.Split('\n').Select(l => l.TrimEnd('\r')).Where(l => l.Length > 0 && !l.StartsWith("a=mid:", StringComparison.Ordinal)).ToList();
        if (lines.Count == 0) return Repeat(seed, 0, size);
        var b = new System.Text.StringBuilder(text.EndsWith('\n') ? text : text + "\r\n");
        for (var i = 0; b.Length + lines[i % lines.Count].Length + 2 <= size; i++) b.Append(lines[i % lines.Count]).Append("\r\n");
        var result = new byte[size];
        result.AsSpan().Fill((byte)' ');
        var bytes = System.Text.Encoding.ASCII.GetBytes(b.ToString());
        bytes.AsSpan(0, Math.Min(bytes.Length, size)).CopyTo(result);
        return result;
    }

    // The seed's first `keep` bytes, then the rest of it over and over, to `size` bytes.
    private static byte[] Repeat(byte[] seed, int keep, int size)
    {
        var result = new byte[size];
        if (seed.Length == 0) return result;
        var head = Math.Min(keep, size);
        seed.AsSpan(0, head).CopyTo(result);
        var tail = seed.AsSpan(keep);
        if (tail.IsEmpty) tail = seed;
        for (var o = head; o < size; o += tail.Length) tail[..Math.Min(tail.Length, size - o)].CopyTo(result.AsSpan(o));
        return result;
    }

    /// <summary>Managed bytes one run of <paramref name="data"/> allocates on this thread: the least of three runs after a warm-up run.</summary>
    public static long Allocated(FuzzTarget target, byte[] data)
    {
        target.Run(data);
        var least = long.MaxValue;
        for (var i = 0; i < 3; i++)
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            target.Run(data);
            least = Math.Min(least, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        return least;
    }

    /// <summary>Measures one target with the seeds of its corpus folder.</summary>
    public static Row Measure(FuzzTarget target, string corpusFolder)
    {
        var largest = Directory.EnumerateFiles(corpusFolder).Where(f => !Path.GetFileName(f).StartsWith('.'))
            .Select(f => new FileInfo(f)).OrderByDescending(f => f.Length).ThenBy(f => f.Name, StringComparer.Ordinal).First();
        var seed = File.ReadAllBytes(largest.FullName);
        var points = new List<Point>();
        foreach (var (kind, data) in Inputs(seed)) points.Add(new Point(kind, data.Length, Allocated(target, data)));
        points.Add(new Point("seed", seed.Length, Allocated(target, seed)));
        var setUp = points.Where(p => p.Length == Sizes[0] || p.Kind == "seed").Max(p => p.Bytes);
        var bound = Bounds.TryGetValue(target.Name, out var b) ? b : throw new InvalidOperationException($"no allocation bound for {target.Name}");
        return new Row(target.Name, bound, points, setUp, seed.Length);
    }
}
