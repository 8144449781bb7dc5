using System.Globalization;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Parses durations as Istio's YAML writes them (Go's <c>time.ParseDuration</c> units: h, m, s, ms, us, ns; combinations like <c>1m30s</c>).</summary>
internal static class DurationParser
{
    public static bool TryParse(string text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        var span = text.AsSpan().Trim();
        if (span.IsEmpty)
        {
            return false;
        }
        if (span is "0")
        {
            return true;
        }
        double totalSeconds = 0;
        while (!span.IsEmpty)
        {
            var numberLength = 0;
            while (numberLength < span.Length && (char.IsAsciiDigit(span[numberLength]) || span[numberLength] == '.'))
            {
                numberLength++;
            }
            if (numberLength == 0 || !double.TryParse(span[..numberLength], NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out var number))
            {
                return false;
            }
            span = span[numberLength..];
            var unitLength = 0;
            while (unitLength < span.Length && char.IsAsciiLetter(span[unitLength]))
            {
                unitLength++;
            }
            double? scale = span[..unitLength] switch
            {
                "h" => 3600,
                "m" => 60,
                "s" => 1,
                "ms" => 1e-3,
                "us" or "µs" => 1e-6,
                "ns" => 1e-9,
                _ => null,
            };
            if (scale is null)
            {
                return false;
            }
            totalSeconds += number * scale.Value;
            span = span[unitLength..];
        }
        // Past protobuf's Duration range (about 10,000 years) Envoy rejects it, and further on TimeSpan overflows.
        if (totalSeconds > Google.Protobuf.WellKnownTypes.Duration.MaxSeconds)
        {
            return false;
        }
        duration = TimeSpan.FromSeconds(totalSeconds);
        return true;
    }
}
