using System.Text.RegularExpressions;
using Bowline.Proxy.Clusters;

namespace Bowline.Proxy.Routing;

/// <summary>One weighted target of a route or a TCP proxy: the cluster's stable handle and the target's own header mutations.</summary>
internal sealed record WeightedTarget(ClusterState Cluster, long CumulativeWeight, HeaderMutation? RequestHeaders = null, HeaderMutation? ResponseHeaders = null, string? HostRewrite = null)
{
    public string ClusterName => Cluster.Name;

    /// <summary>Draws one of <paramref name="targets"/> (cumulative weights, ascending) by weight; one target needs no draw.</summary>
    public static WeightedTarget Pick(WeightedTarget[] targets, Random random)
    {
        if (targets.Length == 1)
        {
            return targets[0];
        }
        var roll = random.NextInt64(targets[^1].CumulativeWeight);
        foreach (var target in targets)
        {
            if (roll < target.CumulativeWeight)
            {
                return target;
            }
        }
        return targets[^1];
    }
}

/// <summary>A request mirror: the cluster copies go to, and the share of requests mirrored (per million).</summary>
internal sealed record MirrorPolicy(ClusterState Cluster, int PerMillion);

/// <summary>
/// Envoy's <c>RouteAction</c>, compiled: where the request goes (weighted clusters, proportions not slots), how long
/// it may take, how it is retried, hashed, rewritten and mirrored. Immutable.
/// </summary>
internal sealed class RouteAction
{
    private readonly WeightedTarget[] _targets;

    public RouteAction(WeightedTarget[] targets)
    {
        _targets = targets;
    }

    public IReadOnlyList<WeightedTarget> Targets => _targets;

    /// <summary>The route timeout; null means none (Istio's default, Envoy's 0).</summary>
    public TimeSpan? Timeout { get; init; }

    public RetryPolicy? Retry { get; init; }

    /// <summary>Hash policies for consistent-hash clusters, in order; empty when none.</summary>
    public HashPolicy[] HashPolicies { get; init; } = [];

    public string? PrefixRewrite { get; init; }

    public (Regex Pattern, string Substitution)? RegexRewrite { get; init; }

    public string? HostRewrite { get; init; }

    public MirrorPolicy[] Mirrors { get; init; } = [];

    /// <summary>The route's <c>rate_limits</c>: the descriptors the local rate limit filter looks up; empty when none.</summary>
    public RateLimitPolicy[] RateLimits { get; init; } = [];

    /// <summary>Picks a target by weight; <paramref name="random"/> is the injected source of randomness.</summary>
    public WeightedTarget Pick(Random random) => WeightedTarget.Pick(_targets, random);

    /// <summary>The path sent upstream: the route's rewrite applied, or the request's path unchanged.</summary>
    public string? RewritePath(string path, string? matchedPrefix)
    {
        if (PrefixRewrite is { } replacement)
        {
            // A prefix match swaps the matched prefix; a path or regex match swaps the whole path, as Envoy does.
            return matchedPrefix is not null && path.StartsWith(matchedPrefix, StringComparison.OrdinalIgnoreCase)
                ? string.Concat(replacement, path.AsSpan(matchedPrefix.Length))
                : replacement;
        }
        if (RegexRewrite is var (pattern, substitution))
        {
            return pattern.Replace(path, substitution);
        }
        return null;
    }
}

/// <summary>Envoy's <c>redirect</c> action, compiled. Null parts keep the request's own.</summary>
internal sealed record RedirectAction(string? Scheme, string? Host, int? Port, string? Path, string? PrefixRewrite, (Regex Pattern, string Substitution)? RegexRewrite, int Status, bool StripQuery);

/// <summary>Envoy's <c>direct_response</c> action: a fixed status and body.</summary>
internal sealed record DirectResponseAction(int Status, string Body);
