using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace Transport.Streaming.Hosting;

/// <summary>
/// Binds <see cref="WebRtcSessionsOptions"/> from a configuration section with the standard binder, after reading
/// every time as either a <see cref="TimeSpan"/> (<c>00:00:10</c>) or seconds (<c>10</c>, <c>0.5</c>; the standard
/// binder would read <c>10</c> as ten days), and <c>0</c> or <c>none</c> as "no limit" for an optional time. A key
/// that names no option is an error, so a misspelt limit is not silently ignored.
/// </summary>
public static class WebRtcConfiguration
{
    /// <summary>Binds <paramref name="section"/> (the <c>WebRtc</c> section) onto <paramref name="options"/>.</summary>
    public static void Bind(IConfiguration section, WebRtcSessionsOptions options)
    {
        ArgumentNullException.ThrowIfNull(section);
        ArgumentNullException.ThrowIfNull(options);
        var values = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (key, value) in section.AsEnumerable(makePathsRelative: true))
        {
            if (value is null) continue;
            values[key] = TimeKind(key) switch
            {
                null => value,
                var nullable => Time(key, value, nullable.Value),
            };
        }
        if (values.Count == 0) return;
        new ConfigurationBuilder().AddInMemoryCollection(values).Build().Bind(options, o => o.ErrorOnUnknownConfiguration = true);
    }

    /// <summary>Null when <paramref name="path"/> names no time; else whether the time is optional (nullable).</summary>
    private static bool? TimeKind(string path)
    {
        var type = typeof(WebRtcSessionsOptions);
        foreach (var segment in path.Split(ConfigurationPath.KeyDelimiter))
        {
            var property = type.GetProperty(segment, BindingFlags.Public | BindingFlags.Instance | BindingFlags.IgnoreCase);
            if (property is null) return null;
            type = property.PropertyType;
        }
        return type == typeof(TimeSpan) ? false : type == typeof(TimeSpan?) ? true : null;
    }

    private static string Time(string key, string value, bool optional)
    {
        var text = value.Trim();
        if (optional && (text.Length == 0 || text.Equals("none", StringComparison.OrdinalIgnoreCase))) return "";
        if (!text.Contains(':', StringComparison.Ordinal))
        {
            if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) || !double.IsFinite(seconds)
                || seconds < 0 || seconds > 1e9)
                throw new InvalidOperationException($"{WebRtcSessionsOptions.SectionName}:{key} '{value}' is not a time (seconds, or hh:mm:ss)");
            if (optional && seconds == 0) return "";
            return TimeSpan.FromSeconds(seconds).ToString("c", CultureInfo.InvariantCulture);
        }
        if (!TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var time) || time < TimeSpan.Zero)
            throw new InvalidOperationException($"{WebRtcSessionsOptions.SectionName}:{key} '{value}' is not a time (seconds, or hh:mm:ss)");
        return optional && time == TimeSpan.Zero ? "" : text;
    }
}
