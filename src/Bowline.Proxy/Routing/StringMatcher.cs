using System.Text.RegularExpressions;
using Bowline.Proxy.Configuration;

namespace Bowline.Proxy.Routing;

/// <summary>A compiled Envoy <c>StringMatcher</c> (exact, prefix, suffix, contains, safe_regex), immutable.</summary>
internal sealed class StringMatcher
{
    private readonly Kind _kind;
    private readonly string _value;
    private readonly Regex? _regex;
    private readonly StringComparison _comparison;

    private StringMatcher(Kind kind, string value, Regex? regex, bool ignoreCase)
    {
        _kind = kind;
        _value = value;
        _regex = regex;
        _comparison = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
    }

    private enum Kind
    {
        Exact,
        Prefix,
        Suffix,
        Contains,
        Regex,
    }

    public bool Matches(string value) => _kind switch
    {
        Kind.Exact => string.Equals(value, _value, _comparison),
        Kind.Prefix => value.StartsWith(_value, _comparison),
        Kind.Suffix => value.EndsWith(_value, _comparison),
        Kind.Contains => value.Contains(_value, _comparison),
        _ => _regex!.IsMatch(value),
    };

    public static StringMatcher From(Envoy.Type.Matcher.V3.StringMatcher matcher, string where) => matcher.MatchPatternCase switch
    {
        Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Exact => new(Kind.Exact, matcher.Exact, null, matcher.IgnoreCase),
        Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Prefix => new(Kind.Prefix, matcher.Prefix, null, matcher.IgnoreCase),
        Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Suffix => new(Kind.Suffix, matcher.Suffix, null, matcher.IgnoreCase),
        Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Contains => new(Kind.Contains, matcher.Contains, null, matcher.IgnoreCase),
        Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.SafeRegex => new(Kind.Regex, matcher.SafeRegex.Regex, CompileRegex(matcher.SafeRegex.Regex, where), false),
        _ => throw new ProxyConfigException($"{where}: string matcher {matcher.MatchPatternCase} is not supported"),
    };

    public static StringMatcher Exact(string value) => new(Kind.Exact, value, null, false);

    public static StringMatcher Prefix(string value) => new(Kind.Prefix, value, null, false);

    public static StringMatcher Regex(string pattern, string where) => new(Kind.Regex, pattern, CompileRegex(pattern, where), false);

    /// <summary>
    /// Envoy's safe_regex (RE2) must match the whole value; compiled once per config update. The non-backtracking
    /// engine matches in linear time, so neither a hostile pattern nor a long header can stall a worker. Rewrites
    /// (<paramref name="anchored"/> false) search instead of matching whole.
    /// </summary>
    public static Regex CompileRegex(string pattern, string where, bool ignoreCase = false, bool anchored = true)
    {
        try
        {
            var options = RegexOptions.CultureInvariant | RegexOptions.NonBacktracking | (ignoreCase ? RegexOptions.IgnoreCase : RegexOptions.None);
            return new Regex(anchored ? $"^(?:{pattern})$" : pattern, options);
        }
        catch (Exception e) when (e is ArgumentException or NotSupportedException)
        {
            throw new ProxyConfigException($"{where}: invalid regex '{pattern}': {e.Message}");
        }
    }
}
