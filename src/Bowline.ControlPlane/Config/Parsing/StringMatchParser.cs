using System.Text.RegularExpressions;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>How strictly one Istio <c>StringMatch</c> is read; Istio's rules differ by where the match sits.</summary>
internal enum StringMatchRules
{
    /// <summary>scheme, method, authority, headers, query parameters: a prefix must not be empty.</summary>
    Strict,

    /// <summary>uri: an empty prefix is allowed (Envoy's path prefix may be empty).</summary>
    Uri,

    /// <summary>corsPolicy.allowOrigins: every kind needs a non-empty value.</summary>
    NonEmpty,
}

/// <summary>Reads Istio's <c>StringMatch</c> (one of exact, prefix, regex) with Istio's rules and our proxy's regex engine.</summary>
internal static class StringMatchParser
{
    /// <summary>Istio's cap on a regex: Envoy limits RE2 program size, and the length is a safe stand-in for it.</summary>
    private const int MaxRegexLength = 1024;

    /// <summary>
    /// Reads a match; <paramref name="empty"/> is true for <c>{}</c> (no kind given), which Istio reads as "present,
    /// any value" in headers and query parameters. Returns null for <c>{}</c> and for an invalid match (with an error).
    /// </summary>
    public static StringMatch? Parse(FieldReader reader, StringMatchRules rules, out bool empty)
    {
        empty = false;
        StringMatch? result = null;
        var count = 0;
        foreach (var kind in new[] { StringMatch.Exact, StringMatch.Prefix, StringMatch.Regex })
        {
            if (reader.String(kind) is { } value)
            {
                count++;
                result = new StringMatch(kind, value);
            }
        }
        reader.Finish();
        if (count > 1)
        {
            reader.Error("give exactly one of exact, prefix or regex");
            return null;
        }
        if (result is null)
        {
            empty = true;
            return null;
        }
        if (result.Value.Length == 0)
        {
            var allowed = result.Kind switch
            {
                StringMatch.Exact => rules != StringMatchRules.NonEmpty,
                StringMatch.Prefix => rules == StringMatchRules.Uri,
                _ => false,
            };
            if (!allowed)
            {
                reader.Error(result.Kind, $"an empty {result.Kind} match is not allowed here; give a value or remove the match");
                return null;
            }
        }
        if (result.Kind == StringMatch.Regex && Regex(reader, StringMatch.Regex, result.Value) is null)
        {
            return null;
        }
        return result;
    }

    /// <summary>Validates a regex as the proxy will compile it (linear-time engine, anchored as Envoy anchors); null and an error if it is not valid.</summary>
    public static string? Regex(FieldReader reader, string key, string pattern)
    {
        if (pattern.Length > MaxRegexLength)
        {
            reader.Error(key, $"the regex is {pattern.Length} characters long; at most {MaxRegexLength} are allowed");
            return null;
        }
        try
        {
            // The same engine and anchoring the proxy uses, so what passes here cannot be NACKed there.
            _ = new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            reader.Error(key, $"'{pattern}' is not a valid regular expression: {e.Message}; Istio and Envoy use RE2 syntax");
            return null;
        }
        return pattern;
    }
}
