using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Routing;

/// <summary>A header condition of a route: the header (or pseudo-header <c>:method</c>, <c>:authority</c>, <c>:path</c>, <c>:scheme</c>) and how it must match.</summary>
/// <param name="MissingAsEmpty">Envoy's treat_missing_header_as_empty: an absent header is matched as the empty string (Istio's withoutHeaders uses it).</param>
internal sealed record HeaderCondition(string Name, StringMatcher? Matcher, bool PresentOnly, bool Invert, bool MissingAsEmpty = false)
{
    /// <summary>Envoy's header match; several values of one header are matched joined by commas, as Envoy joins them.</summary>
    public bool Matches(HttpRequest request)
    {
        string? value = Name switch
        {
            ":method" => request.Method,
            ":authority" => request.Host.Value,
            ":path" => request.Path.Value + request.QueryString.Value,
            ":scheme" => request.Scheme,
            _ => request.Headers.TryGetValue(Name, out var values) ? values.ToString() : null,
        };
        if (value is null && MissingAsEmpty)
        {
            value = "";
        }
        if (value is null)
        {
            // Envoy: an absent header fails every match except a presence check that asks for absence (an inverted
            // string match does not match a missing header).
            return PresentOnly && Invert;
        }
        return (PresentOnly || Matcher!.Matches(value)) != Invert;
    }
}

/// <summary>A query-parameter condition: present (any value) or matching.</summary>
internal sealed record QueryCondition(string Name, StringMatcher? Matcher);

/// <summary>A route's or a virtual host's compiled <c>typed_per_filter_config</c> entry for one filter.</summary>
/// <param name="Disabled">From <c>envoy.config.route.v3.FilterConfig.disabled</c>; null when the route did not say.</param>
internal sealed record PerFilterConfig(object? Config, bool? Disabled);

/// <summary>What a matched route does.</summary>
internal enum RouteKind
{
    /// <summary>Forward to a cluster (Envoy's <c>route</c>).</summary>
    Forward,

    /// <summary>Answer with a redirect.</summary>
    Redirect,

    /// <summary>Answer with a fixed status and body.</summary>
    DirectResponse,
}

/// <summary>
/// A compiled Envoy route: its match (path, headers, query parameters) and its action. Immutable; matching reads the
/// request and allocates nothing for single-valued headers.
/// </summary>
internal sealed class RouteEntry
{
    private readonly string? _exactPath;
    private readonly string? _prefix;
    private readonly Regex? _pathRegex;
    private readonly StringComparison _pathComparison;
    private readonly HeaderCondition[] _headers;
    private readonly QueryCondition[] _query;

    public RouteEntry(string name, string? exactPath, string? prefix, Regex? pathRegex, bool caseSensitive, HeaderCondition[] headers, QueryCondition[] query)
    {
        Name = name;
        _exactPath = exactPath;
        _prefix = prefix;
        _pathRegex = pathRegex;
        _pathComparison = caseSensitive ? StringComparison.Ordinal : StringComparison.OrdinalIgnoreCase;
        _headers = headers;
        _query = query;
    }

    public string Name { get; }

    public RouteKind Kind { get; init; }

    /// <summary>Envoy's <c>decorator.operation</c>: the name of the spans of requests on this route.</summary>
    public string? Decorator { get; init; }

    /// <summary>Set when <see cref="Kind"/> is <see cref="RouteKind.Forward"/>.</summary>
    public RouteAction? Action { get; init; }

    public RedirectAction? Redirect { get; init; }

    public DirectResponseAction? DirectResponse { get; init; }

    /// <summary>The route's (and its virtual host's) request header mutations, applied to what goes upstream.</summary>
    public HeaderMutation? RequestHeaders { get; init; }

    /// <summary>The route's (and its virtual host's) response header mutations.</summary>
    public HeaderMutation? ResponseHeaders { get; init; }

    /// <summary>Per-filter overrides by filter name; null when the route has none.</summary>
    public IReadOnlyDictionary<string, PerFilterConfig>? FilterConfigs { get; init; }

    /// <summary>Envoy's include_request_attempt_count (from the virtual host): send <c>x-envoy-attempt-count</c> upstream.</summary>
    public bool IncludeAttemptCount { get; init; }

    /// <summary>Only for the prefix-rewrite: the matched prefix (Envoy rewrites exactly what matched).</summary>
    public string? MatchedPrefix => _prefix;

    public bool Matches(HttpRequest request)
    {
        var path = request.Path.Value ?? "/";
        if (_exactPath is not null ? !string.Equals(path, _exactPath, _pathComparison)
            : _prefix is not null ? !path.StartsWith(_prefix, _pathComparison)
            : _pathRegex is not null && !_pathRegex.IsMatch(path))
        {
            return false;
        }
        foreach (var header in _headers)
        {
            if (!header.Matches(request))
            {
                return false;
            }
        }
        foreach (var query in _query)
        {
            if (!request.Query.TryGetValue(query.Name, out var values) || (query.Matcher is { } matcher && !matcher.Matches(values[0] ?? "")))
            {
                return false;
            }
        }
        return true;
    }
}
