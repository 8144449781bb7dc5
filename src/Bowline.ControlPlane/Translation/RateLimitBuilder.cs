using System.Text.RegularExpressions;
using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Turns Bowline RateLimits into Envoy's local rate limit: the filter sits in every sidecar and gateway HCM with no
/// bucket (inert), and each route a RateLimit selects carries a bucket in <c>typed_per_filter_config</c>. A route whose
/// path lies inside a RateLimit match is limited whole; a route that only partly overlaps one (the default <c>/</c>
/// route and a match on <c>/api</c>) is split: a copy narrowed to the match, limited, goes just before it, so exactly
/// the matching requests are limited and routing is otherwise unchanged.
/// </summary>
internal static class RateLimitBuilder
{
    public const string FilterName = "envoy.filters.http.local_ratelimit";

    /// <summary>Envoy's conventional prefix: the counters read <c>http_local_rate_limiter.http_local_rate_limit.rate_limited</c>.</summary>
    public const string StatPrefix = "http_local_rate_limiter";

    /// <summary>The filter as it sits in every sidecar and gateway HCM: no token bucket, so it limits nothing by itself.</summary>
    public static Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpFilter Filter() => new()
    {
        Name = FilterName,
        TypedConfig = Any.Pack(new LocalRateLimit { StatPrefix = StatPrefix }),
    };

    /// <summary>The routes of one service port with every RateLimit of that service applied (in config order; the first to select a request wins).</summary>
    public static List<Route> Apply(ServiceIndex index, MeshService service, ServicePort port, List<Route> routes, SnapshotBuilder snapshot)
    {
        foreach (var limit in index.RateLimitsFor(service.Hostname))
        {
            if (limit.Port is { } p && p != port.Number)
            {
                continue;
            }
            var config = Any.Pack(PerRoute(limit));
            var where = $"{limit.Meta} ({limit.Meta.File})";
            IReadOnlyList<StringMatch?> matches = limit.Matches.Count == 0 ? new StringMatch?[] { null } : [.. limit.Matches];
            var result = new List<Route>(routes.Count);
            foreach (var route in routes)
            {
                // A route an earlier RateLimit already limits (whole, or the narrowed copy it made) keeps that limit.
                if (route.TypedPerFilterConfig.ContainsKey(FilterName))
                {
                    result.Add(route);
                    continue;
                }
                var whole = false;
                var copies = new List<Route>();
                foreach (var match in matches)
                {
                    var (overlap, narrowed) = Relate(route.Match, match);
                    switch (overlap)
                    {
                        case Overlap.RouteInside:
                            whole = true;
                            break;
                        case Overlap.MatchInside:
                            var copy = route.Clone();
                            EnvoyBuilders.SetPath(copy.Match, narrowed);
                            copy.Match.CaseSensitive = null;
                            copy.TypedPerFilterConfig[FilterName] = config;
                            copies.Add(copy);
                            break;
                        case Overlap.Unknown:
                            snapshot.Warn($"{where}: cannot tell which requests of route '{route.Name}' of {service.Hostname}:{port.Number} match uri {match!.Kind} '{match.Value}' (a regex on one side); that route is not limited. Use prefix or exact matches");
                            break;
                    }
                    if (whole)
                    {
                        break;
                    }
                }
                if (whole)
                {
                    var limited = route.Clone();
                    limited.TypedPerFilterConfig[FilterName] = config;
                    result.Add(limited);
                }
                else
                {
                    result.AddRange(copies);
                    result.Add(route);
                }
            }
            routes = result;
        }
        return routes;
    }

    /// <summary>References a RateLimit makes that the mesh cannot satisfy, and the clients it cannot reach.</summary>
    public static void WarnUnresolved(ServiceIndex index, ProxyKind kind, SnapshotBuilder snapshot)
    {
        foreach (var limit in index.Config.RateLimits)
        {
            var host = Names.Qualify(limit.Host, limit.Meta.Namespace);
            var where = $"{limit.Meta} ({limit.Meta.File})";
            if (index.FindService(host) is not { } service)
            {
                snapshot.Warn($"{where}: host {host} is not a service in the mesh; it limits nothing until one exists");
            }
            else if (limit.Port is { } port && !service.Ports.Any(p => p.Number == port && p.IsHttp))
            {
                snapshot.Warn($"{where}: {host} has no HTTP port {port}; it limits nothing. Name one of: {string.Join(", ", service.Ports.Where(p => p.IsHttp).Select(p => p.Number))}");
            }
            else if (kind == ProxyKind.ProxylessGrpc)
            {
                snapshot.Warn($"{where}: proxyless gRPC clients have no local rate limit filter; calls from them to {host} are not limited");
            }
        }
    }

    public static LocalRateLimit PerRoute(Config.RateLimit limit)
    {
        var config = new LocalRateLimit
        {
            StatPrefix = StatPrefix,
            TokenBucket = new Envoy.Type.V3.TokenBucket
            {
                MaxTokens = (uint)limit.Bucket.MaxTokens,
                TokensPerFill = (uint)limit.Bucket.TokensPerFill,
                FillInterval = Duration.FromTimeSpan(limit.Bucket.FillInterval),
            },
            // Both default to 0% in Envoy: a bucket that is neither enabled nor enforced limits nothing.
            FilterEnabled = new RuntimeFractionalPercent { DefaultValue = EnvoyBuilders.Hundredths(100) },
            FilterEnforced = new RuntimeFractionalPercent { DefaultValue = EnvoyBuilders.Hundredths(100) },
            Status = new Envoy.Type.V3.HttpStatus { Code = (Envoy.Type.V3.StatusCode)limit.StatusCode },
            EnableXRatelimitHeaders = Envoy.Extensions.Common.Ratelimit.V3.XRateLimitHeadersRFCVersion.DraftVersion03,
        };
        foreach (var (name, value) in limit.ResponseHeaders)
        {
            config.ResponseHeadersToAdd.Add(new HeaderValueOption { Header = new HeaderValue { Key = name, Value = value } });
        }
        return config;
    }

    private enum Overlap
    {
        /// <summary>No request of the route matches.</summary>
        None,

        /// <summary>Every request of the route matches: limit the route.</summary>
        RouteInside,

        /// <summary>Some requests of the route match, and they are exactly the route narrowed to the match: split.</summary>
        MatchInside,

        /// <summary>A regex on one side: the overlap cannot be computed.</summary>
        Unknown,
    }

    /// <summary>
    /// How the requests a route's path matcher takes relate to a RateLimit's uri match (null: every path); for
    /// <see cref="Overlap.MatchInside"/>, the path matcher (case-sensitive) that takes exactly the requests in both.
    /// </summary>
    private static (Overlap Overlap, StringMatch? Narrowed) Relate(RouteMatch route, StringMatch? match)
    {
        if (match is null || (match.Kind == StringMatch.Prefix && match.Value is "" or "/"))
        {
            return (Overlap.RouteInside, null);
        }
        // Envoy applies case_sensitive to prefix and path, never to safe_regex.
        var ignoreCase = route.CaseSensitive == false;
        var comparison = ignoreCase ? StringComparison.OrdinalIgnoreCase : StringComparison.Ordinal;
        switch (route.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                var prefix = route.Prefix;
                return match.Kind switch
                {
                    // A case-insensitive route lies inside a case-sensitive prefix only if that prefix has no letters to differ in.
                    StringMatch.Prefix when prefix.StartsWith(match.Value, StringComparison.Ordinal) && (!ignoreCase || !match.Value.Any(char.IsLetter)) => (Overlap.RouteInside, null),
                    StringMatch.Prefix or StringMatch.Exact when match.Value.StartsWith(prefix, comparison) => (Overlap.MatchInside, match),
                    StringMatch.Prefix or StringMatch.Exact => (Overlap.None, null),
                    _ => prefix is "" or "/" ? (Overlap.MatchInside, match) : (Overlap.Unknown, null),
                };
            case RouteMatch.PathSpecifierOneofCase.Path:
                var path = route.Path;
                var inside = match.Kind switch
                {
                    StringMatch.Prefix => path.StartsWith(match.Value, comparison),
                    StringMatch.Exact => string.Equals(path, match.Value, comparison),
                    _ => !ignoreCase && FullMatch(match.Value, path),
                };
                if (!inside)
                {
                    return match.Kind == StringMatch.Regex && ignoreCase ? (Overlap.Unknown, null) : (Overlap.None, null);
                }
                // A case-insensitive exact route takes every spelling of its path; an exact match names one of them, a
                // case-sensitive prefix an unknown share.
                return !ignoreCase ? (Overlap.RouteInside, null) : match.Kind == StringMatch.Exact ? (Overlap.MatchInside, match) : (Overlap.Unknown, null);
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                if (match.Kind == StringMatch.Regex && match.Value == route.SafeRegex.Regex)
                {
                    return (Overlap.RouteInside, null);
                }
                if (match.Kind == StringMatch.Exact)
                {
                    return FullMatch(route.SafeRegex.Regex, match.Value) ? (Overlap.MatchInside, match) : (Overlap.None, null);
                }
                return (Overlap.Unknown, null);
            default:
                return (Overlap.Unknown, null);
        }
    }

    /// <summary>Whether a regex matches the whole value, as Envoy anchors it (the parser checked it compiles with this engine).</summary>
    private static bool FullMatch(string pattern, string value) =>
        new Regex($"^(?:{pattern})$", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking).IsMatch(value);
}
