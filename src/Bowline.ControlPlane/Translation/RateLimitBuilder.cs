using System.Text.RegularExpressions;
using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.LocalRatelimit.V3;
using Google.Protobuf.WellKnownTypes;
using EnvoyRateLimit = Envoy.Config.Route.V3.RateLimit;

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
            if (limit.Bucket is not null && (limit.Port is not { } p || p == port.Number))
            {
                routes = Limit(limit, Any.Pack(PerRoute(limit)), null, $"{service.Hostname}:{port.Number}", routes, snapshot);
            }
        }
        return routes;
    }

    /// <summary>The descriptor key the inbound routes' rate_limits write the caller's identity under.</summary>
    public const string SourcePrincipalKey = "source_principal";

    /// <summary>
    /// The inbound routes of a workload's port with the <c>perSource</c> limits of the services it serves on that port:
    /// each limited route carries a rate_limits entry whose expression descriptor names the caller's mTLS identity
    /// (<c>connection.uri_san_peer_certificate</c>), and a local rate limit with one descriptor (and bucket) per
    /// identity of the mesh: every WorkloadEntry's service account, every ServiceEntry endpoint's, and every override.
    /// Callers without one, or with an identity the mesh has no workload for, share the default bucket. A port that
    /// serves two services cannot tell which one a request was addressed to: the first service's perSource limit
    /// applies to it, and the other's is a warning.
    /// </summary>
    public static List<Route> ApplyInbound(ServiceIndex index, IEnumerable<(MeshService Service, ServicePort Port)> served, List<Route> routes, SnapshotBuilder snapshot)
    {
        var trustDomain = index.Config.Security.TrustDomain;
        MeshService? limitedBy = null;
        foreach (var (service, port) in served)
        {
            foreach (var limit in index.RateLimitsFor(service.Hostname))
            {
                if (limit.PerSource is not { } perSource || (limit.Port is { } p && p != port.Number))
                {
                    continue;
                }
                if (limitedBy is not null && limitedBy != service)
                {
                    snapshot.Warn($"{limit.Meta} ({limit.Meta.File}): perSource of {service.Hostname} is not applied on the workload port {port.TargetPort ?? port.Number} it shares with {limitedBy.Hostname}, whose perSource limit applies to every request there (the inbound side cannot tell which service a request was addressed to). Serve the two services on different target ports, or limit them with one RateLimit");
                    continue;
                }
                limitedBy = service;
                if (!index.Config.Security.MeshMtls)
                {
                    snapshot.Warn($"{limit.Meta} ({limit.Meta.File}): perSource needs mesh mTLS to know who calls; without it every caller of {service.Hostname} shares one bucket");
                }
                routes = Limit(limit, Any.Pack(PerSourceRoute(limit, perSource, Identities(index, trustDomain, perSource))), IdentityRateLimit(), $"inbound {service.Hostname}:{port.Number}", routes, snapshot);
            }
        }
        return routes;
    }

    /// <summary>Every mesh identity a caller can have, as SPIFFE ids: the workloads' service accounts and the overrides' principals.</summary>
    private static SortedSet<string> Identities(ServiceIndex index, string trustDomain, PerSourceLimit perSource)
    {
        var identities = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var workload in index.Config.WorkloadEntries)
        {
            identities.Add($"spiffe://{trustDomain}/ns/{workload.Meta.Namespace}/sa/{workload.ServiceAccount ?? "default"}");
        }
        // A ServiceEntry's inline endpoint that names a service account is a mesh workload too (Istio's VM shape).
        foreach (var entry in index.Config.ServiceEntries)
        {
            foreach (var endpoint in entry.Endpoints.Where(e => e.ServiceAccount is not null))
            {
                identities.Add($"spiffe://{trustDomain}/ns/{entry.Meta.Namespace}/sa/{endpoint.ServiceAccount}");
            }
        }
        foreach (var (principal, _) in perSource.Overrides)
        {
            identities.Add("spiffe://" + principal);
        }
        return identities;
    }

    private static EnvoyRateLimit IdentityRateLimit() => new()
    {
        Actions =
        {
            new EnvoyRateLimit.Types.Action
            {
                Extension = new TypedExtensionConfig
                {
                    Name = "envoy.rate_limit_descriptors.expr",
                    TypedConfig = Any.Pack(new Envoy.Extensions.RateLimitDescriptors.Expr.V3.Descriptor { DescriptorKey = SourcePrincipalKey, Text = "connection.uri_san_peer_certificate" }),
                },
            },
        },
    };

    /// <summary>Applies one RateLimit's <paramref name="config"/> (and, for per-identity limits, its route rate_limits) to the routes it selects.</summary>
    private static List<Route> Limit(Config.RateLimit limit, Any config, EnvoyRateLimit? rateLimits, string what, List<Route> routes, SnapshotBuilder snapshot)
    {
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
                        var copy = Limited(route, config, rateLimits);
                        EnvoyBuilders.SetPath(copy.Match, narrowed);
                        copy.Match.CaseSensitive = null;
                        copies.Add(copy);
                        break;
                    case Overlap.Unknown:
                        snapshot.Warn($"{where}: cannot tell which requests of route '{route.Name}' of {what} match uri {match!.Kind} '{match.Value}' (a regex on one side); that route is not limited. Use prefix or exact matches");
                        break;
                }
                if (whole)
                {
                    break;
                }
            }
            if (whole)
            {
                result.Add(Limited(route, config, rateLimits));
            }
            else
            {
                result.AddRange(copies);
                result.Add(route);
            }
        }
        return result;
    }

    private static Route Limited(Route route, Any config, EnvoyRateLimit? rateLimits)
    {
        var limited = route.Clone();
        limited.TypedPerFilterConfig[FilterName] = config;
        if (rateLimits is not null && limited.Route_ is { } action)
        {
            action.RateLimits.Add(rateLimits);
        }
        return limited;
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

    public static LocalRateLimit PerRoute(Config.RateLimit limit) => Common(limit, limit.Bucket!);

    /// <summary>The server side's config: the default bucket for callers without a known identity, one descriptor per identity.</summary>
    private static LocalRateLimit PerSourceRoute(Config.RateLimit limit, PerSourceLimit perSource, IEnumerable<string> identities)
    {
        var config = Common(limit, perSource.Bucket);
        // Each identity takes from its own bucket only; the default one is for the callers no descriptor names.
        config.AlwaysConsumeDefaultTokenBucket = false;
        foreach (var identity in identities)
        {
            var own = perSource.Overrides.FirstOrDefault(o => "spiffe://" + o.Principal == identity).Bucket ?? perSource.Bucket;
            config.Descriptors.Add(new Envoy.Extensions.Common.Ratelimit.V3.LocalRateLimitDescriptor
            {
                Entries = { new Envoy.Extensions.Common.Ratelimit.V3.RateLimitDescriptor.Types.Entry { Key = SourcePrincipalKey, Value = identity } },
                TokenBucket = Bucket(own),
            });
        }
        return config;
    }

    private static Envoy.Type.V3.TokenBucket Bucket(TokenBucketSettings bucket) => new()
    {
        MaxTokens = (uint)bucket.MaxTokens,
        TokensPerFill = (uint)bucket.TokensPerFill,
        FillInterval = Duration.FromTimeSpan(bucket.FillInterval),
    };

    private static LocalRateLimit Common(Config.RateLimit limit, TokenBucketSettings bucket)
    {
        var config = new LocalRateLimit
        {
            StatPrefix = StatPrefix,
            TokenBucket = Bucket(bucket),
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
