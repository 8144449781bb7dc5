using System.Text.RegularExpressions;
using Bowline.Proxy.Clusters;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Routing;

/// <summary>A header condition of a route: the header (or pseudo-header <c>:method</c>, <c>:authority</c>, <c>:path</c>) and how it must match.</summary>
internal sealed record HeaderCondition(string Name, StringMatcher? Matcher, bool PresentOnly, bool Invert);

/// <summary>One weighted target of a route; <see cref="Cluster"/> is null when CDS has no such cluster (503 NC).</summary>
internal sealed record WeightedTarget(string ClusterName, UpstreamCluster? Cluster, int CumulativeWeight);

/// <summary>
/// A compiled Envoy route: its match (path, headers) and its action (clusters with weights, timeout). Immutable;
/// matching reads the request and allocates nothing for single-valued headers.
/// </summary>
internal sealed class RouteEntry
{
    private readonly string? _exactPath;
    private readonly string? _prefix;
    private readonly Regex? _pathRegex;
    private readonly HeaderCondition[] _headers;
    private readonly WeightedTarget[] _targets;
    private readonly int _totalWeight;

    public RouteEntry(string name, string? exactPath, string? prefix, Regex? pathRegex, HeaderCondition[] headers, WeightedTarget[] targets, TimeSpan? timeout)
    {
        Name = name;
        _exactPath = exactPath;
        _prefix = prefix;
        _pathRegex = pathRegex;
        _headers = headers;
        _targets = targets;
        _totalWeight = targets.Length == 0 ? 0 : targets[^1].CumulativeWeight;
        Timeout = timeout;
    }

    public string Name { get; }

    /// <summary>Null or zero: no route timeout (Istio's default).</summary>
    public TimeSpan? Timeout { get; }

    public IReadOnlyList<WeightedTarget> Targets => _targets;

    public bool Matches(HttpRequest request)
    {
        var path = request.Path.Value ?? "/";
        if (_exactPath is not null ? !string.Equals(path, _exactPath, StringComparison.Ordinal)
            : _prefix is not null ? !path.StartsWith(_prefix, StringComparison.Ordinal)
            : _pathRegex is not null && !_pathRegex.IsMatch(path))
        {
            return false;
        }
        foreach (var header in _headers)
        {
            if (!HeaderMatches(request, header))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Picks a target by weight; <paramref name="random"/> is the injected source of randomness.</summary>
    public WeightedTarget Pick(Random random)
    {
        if (_targets.Length == 1)
        {
            return _targets[0];
        }
        var roll = random.Next(_totalWeight);
        foreach (var target in _targets)
        {
            if (roll < target.CumulativeWeight)
            {
                return target;
            }
        }
        return _targets[^1];
    }

    private static bool HeaderMatches(HttpRequest request, HeaderCondition header)
    {
        string? value = header.Name switch
        {
            ":method" => request.Method,
            ":authority" => request.Host.Value,
            ":path" => request.Path.Value,
            ":scheme" => request.Scheme,
            _ => request.Headers.TryGetValue(header.Name, out var values) ? values.ToString() : null,
        };
        if (value is null)
        {
            // Envoy: an absent header fails every match except an inverted presence check.
            return header.PresentOnly && header.Invert;
        }
        return (header.PresentOnly || header.Matcher!.Matches(value)) != header.Invert;
    }
}
