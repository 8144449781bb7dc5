using Envoy.Config.Cluster.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;

namespace Bowline.Xds;

/// <summary>
/// How xDS resources refer to each other — a listener to its route configurations over RDS, an EDS cluster to its
/// load assignment — the rule both ends need: the server to check a snapshot's consistency, the client to subscribe.
/// </summary>
public static class ResourceReferences
{
    public const string HttpConnectionManagerTypeUrl = "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager";
    public const string RouterTypeUrl = "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router";
    public const string HttpProtocolOptionsKey = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

    /// <summary>The RDS route configuration names of a listener's HTTP connection managers (filter chains and API listener).</summary>
    public static IEnumerable<string> RouteConfigNames(Listener listener)
    {
        if (listener.ApiListener?.ApiListener_ is { } api && api.TryUnpack<HttpConnectionManager>(out var apiHcm) && apiHcm.Rds is { } apiRds)
        {
            yield return apiRds.RouteConfigName;
        }
        foreach (var chain in listener.FilterChains.Append(listener.DefaultFilterChain).OfType<FilterChain>())
        {
            foreach (var filter in chain.Filters)
            {
                if (filter.TypedConfig is { } config && config.TryUnpack<HttpConnectionManager>(out var hcm) && hcm.Rds is { } rds)
                {
                    yield return rds.RouteConfigName;
                }
            }
        }
    }

    /// <summary>The load assignment an EDS cluster is fed by (its <c>service_name</c>, else its own name); null for other types.</summary>
    public static string? EndpointsName(Cluster cluster) =>
        cluster.Type != Cluster.Types.DiscoveryType.Eds ? null
        : string.IsNullOrEmpty(cluster.EdsClusterConfig?.ServiceName) ? cluster.Name
        : cluster.EdsClusterConfig.ServiceName;
}
