using System.Text.RegularExpressions;

namespace Transport.TestKit.Tests;

/// <summary>
/// House rules of ../shared/DESIGN.md checked on the source tree: the four cores are sans-IO, so none of
/// their files may read a clock, start a timer or thread, sleep, or open a socket.
/// </summary>
public sealed partial class RepositoryRulesTests
{
    // src/Shared holds sources linked into the cores (shared crypto kernels): the same rules apply.
    private static readonly string[] Cores = ["src/Ice", "src/Dtls", "src/Sctp", "src/Rtp", "src/Shared"];

    [GeneratedRegex(@"\bDateTime(Offset)?\s*\.\s*(Now|UtcNow|Today)\b|\bStopwatch\b|\bEnvironment\s*\.\s*TickCount(64)?\b|\bTimer\b|" +
        @"\bPeriodicTimer\b|\bTask\s*\.\s*Delay\b|\bThread\b|\bThreadPool\b|\bSocket\b|\bUdpClient\b|\bTcpClient\b|\bTcpListener\b|\bTimeProvider\b")]
    private static partial Regex ForbiddenInCore();

    [GeneratedRegex(@"//.*?$|/\*.*?\*/|""(?:\\.|[^""\\])*""", RegexOptions.Multiline | RegexOptions.Singleline)]
    private static partial Regex CommentsAndStrings();

    internal static string FindRepositoryRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Transport.sln"))) dir = dir.Parent;
        return dir?.FullName ?? throw new InvalidOperationException("Transport.sln not found above " + AppContext.BaseDirectory);
    }

    internal static IReadOnlyList<string> Violations(string file, string text)
    {
        var code = CommentsAndStrings().Replace(text, m => new string('\n', m.Value.Count(c => c == '\n')));
        var found = new List<string>();
        var lines = code.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var m = ForbiddenInCore().Match(lines[i]);
            if (m.Success) found.Add($"{file}:{i + 1}: '{m.Value}'");
        }
        return found;
    }

    [Fact]
    public void CoresNeitherReadAClockNorDoIo()
    {
        var root = FindRepositoryRoot();
        var violations = new List<string>();
        var files = 0;
        foreach (var core in Cores)
        {
            var dir = Path.Combine(root, core);
            Assert.True(Directory.Exists(dir), $"{core} is missing");
            foreach (var file in Directory.EnumerateFiles(dir, "*.cs", SearchOption.AllDirectories))
            {
                if (file.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}") ||
                    file.Contains($"{Path.DirectorySeparatorChar}bin{Path.DirectorySeparatorChar}")) continue;
                files++;
                violations.AddRange(Violations(Path.GetRelativePath(root, file), File.ReadAllText(file)));
            }
        }
        Assert.True(files > 0, "no core source files were scanned");
        Assert.True(violations.Count == 0, "Sans-IO rule broken:\n" + string.Join('\n', violations));
    }

    [Theory]
    [InlineData("var t = DateTime.UtcNow;")]
    [InlineData("var t = DateTime . Now;")]
    [InlineData("var s = Stopwatch.StartNew();")]
    [InlineData("var t = Environment.TickCount64;")]
    [InlineData("using var t = new Timer(_ => {});")]
    [InlineData("await Task.Delay(10);")]
    [InlineData("Thread.Sleep(1);")]
    [InlineData("var s = new Socket(af, st, pt);")]
    [InlineData("var u = new UdpClient();")]
    public void RuleCatchesForbiddenCalls(string line)
    {
        Assert.NotEmpty(Violations("x.cs", "class C { void M() { " + line + " } }"));
    }

    [Theory]
    [InlineData("// DateTime.UtcNow is not read here")]
    [InlineData("/* a Timer in a comment */")]
    [InlineData("var s = \"Thread\";")]
    [InlineData("var t3 = RetransmissionTimer.Start(now);")]
    [InlineData("TimeSpan now = TimeSpan.Zero;")]
    public void RuleIgnoresCommentsStringsAndOtherNames(string line)
    {
        Assert.Empty(Violations("x.cs", "class C { void M() { " + line + " } }"));
    }
}
