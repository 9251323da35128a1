using System.Diagnostics;

namespace Transport.TestKit;

/// <summary>
/// Node.js peers for interop tests (../shared/INTEROP.md): a temp directory per package version with the test's
/// scripts and an <c>npm install</c> done once (the npm registry is reachable here). Fails, never skips, when node
/// or npm is missing.
/// </summary>
public static class NodePackages
{
    /// <summary>The path of <paramref name="name"/> on PATH (or in /usr/bin).</summary>
    public static string Find(string name) =>
        (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':').Append("/usr/bin").Select(d => Path.Combine(d, name)).FirstOrDefault(File.Exists)
        ?? throw new InvalidOperationException($"{name} is not installed: install Node.js 20 and npm (Debian packages nodejs and npm).");

    /// <summary>A directory of the repository (found upwards from the test binaries by Transport.sln).</summary>
    public static string RepositoryPath(params string[] parts)
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "Transport.sln"))) root = root.Parent;
        return Path.Combine([root?.FullName ?? throw new InvalidOperationException("Transport.sln not found."), .. parts]);
    }

    /// <summary>
    /// Makes <c>$TMPDIR/<paramref name="directoryName"/></c> with <paramref name="packageJson"/> and the
    /// <paramref name="scripts"/> copied from <paramref name="sourceDirectory"/>, and runs <c>npm install</c> unless
    /// <paramref name="requiredPackage"/> is installed there already. Returns the directory.
    /// </summary>
    public static string Prepare(string directoryName, string packageJson, string sourceDirectory, IEnumerable<string> scripts,
        string requiredPackage = "node-datachannel")
    {
        var dir = Path.Combine(Path.GetTempPath(), directoryName);
        Directory.CreateDirectory(dir);
        File.WriteAllText(Path.Combine(dir, "package.json"), packageJson);
        foreach (var script in scripts) File.Copy(Path.Combine(sourceDirectory, script), Path.Combine(dir, script), overwrite: true);
        if (!File.Exists(Path.Combine(dir, "node_modules", requiredPackage, "package.json")))
        {
            var npm = new ProcessStartInfo(Find("npm"), "install --no-audit --no-fund")
            {
                WorkingDirectory = dir,
                RedirectStandardOutput = true,
                RedirectStandardError = true
            };
            using var p = Process.Start(npm)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(180_000)) { p.Kill(true); throw new TimeoutException($"npm install {requiredPackage} took more than 3 minutes."); }
            if (p.ExitCode != 0) throw new InvalidOperationException($"npm install failed ({p.ExitCode}): {stdout.Result}\n{stderr.Result}");
        }
        return dir;
    }
}
