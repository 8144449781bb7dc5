using Bowline.ControlPlane.Config;
using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Istio puts a DestinationRule's consistent-hash key on the routes, not the cluster: Envoy computes the hash at the
/// router and the ring-hash or Maglev cluster only consumes it.
/// </summary>
internal static class HashPolicyBuilder
{
    /// <summary>The consistent hash that applies to one cluster (rule, subset and port with Istio's precedence), if any.</summary>
    public static ConsistentHash? For(DestinationRule? rule, string? subset, int port)
    {
        if (rule is null)
        {
            return null;
        }
        var subsetPolicy = subset is null ? null : rule.Subsets.FirstOrDefault(s => s.Name == subset)?.Policy;
        return TrafficPolicy.Effective(rule.Policy, subsetPolicy, port)?.LoadBalancer?.ConsistentHash;
    }

    public static RouteAction.Types.HashPolicy? Build(ConsistentHash? hash)
    {
        if (hash is null)
        {
            return null;
        }
        if (hash.HttpHeaderName is { } header)
        {
            return new RouteAction.Types.HashPolicy { Header = new RouteAction.Types.HashPolicy.Types.Header { HeaderName = header } };
        }
        if (hash.HttpCookie is { } cookie)
        {
            var policy = new RouteAction.Types.HashPolicy.Types.Cookie { Name = cookie.Name, Path = cookie.Path ?? "" };
            if (cookie.Ttl is { } ttl)
            {
                // With a TTL Envoy sets the cookie when the request lacks it, so a new client sticks from its next request.
                policy.Ttl = Duration.FromTimeSpan(ttl);
            }
            return new RouteAction.Types.HashPolicy { Cookie = policy };
        }
        if (hash.UseSourceIp)
        {
            return new RouteAction.Types.HashPolicy { ConnectionProperties = new RouteAction.Types.HashPolicy.Types.ConnectionProperties { SourceIp = true } };
        }
        if (hash.HttpQueryParameterName is { } query)
        {
            return new RouteAction.Types.HashPolicy { QueryParameter = new RouteAction.Types.HashPolicy.Types.QueryParameter { Name = query } };
        }
        return null;
    }
}
