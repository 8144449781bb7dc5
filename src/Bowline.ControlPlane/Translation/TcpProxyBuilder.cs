using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Extensions.Filters.Network.TcpProxy.V3;
using Google.Protobuf.WellKnownTypes;
using NetworkFilter = Envoy.Config.Listener.V3.Filter;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Envoy's <c>tcp_proxy</c> network filter for a TCP or TLS route, as Istio's buildOutboundNetworkFilters writes it:
/// one destination is one cluster with the cluster's name as stat prefix; several are weighted clusters (weight-0
/// destinations left out) with the VirtualService's <c>name.namespace</c> as stat prefix. The idle timeout and the
/// maximum connection duration come from the first destination's DestinationRule (connectionPool.tcp).
/// </summary>
internal static class TcpProxyBuilder
{
    public const string FilterName = "envoy.filters.network.tcp_proxy";

    /// <param name="port">The listener's port: a destination without a port on a service with several ports takes it.</param>
    public static NetworkFilter ForRoute(ServiceIndex index, VirtualService vs, IReadOnlyList<RouteDestination> destinations, int port, SnapshotBuilder snapshot)
    {
        var policy = PolicyOf(index, vs, destinations[0], port);
        if (destinations.Count == 1)
        {
            var cluster = RouteBuilder.DestinationCluster(index, vs, destinations[0], port, http: false, snapshot);
            return ForCluster(cluster, cluster, policy);
        }
        var weighted = new TcpProxy.Types.WeightedCluster();
        foreach (var destination in destinations.Where(d => d.Weight > 0))
        {
            weighted.Clusters.Add(new TcpProxy.Types.WeightedCluster.Types.ClusterWeight
            {
                Name = RouteBuilder.DestinationCluster(index, vs, destination, port, http: false, snapshot),
                Weight = (uint)destination.Weight,
            });
        }
        var proxy = new TcpProxy { StatPrefix = $"{vs.Meta.Name}.{vs.Meta.Namespace}", WeightedClusters = weighted };
        ApplyPolicy(proxy, policy);
        return Pack(proxy);
    }

    /// <summary>A tcp_proxy to one cluster (an inbound port's app, an AUTO_PASSTHROUGH cluster).</summary>
    public static NetworkFilter ForCluster(string statPrefix, string cluster, TrafficPolicy? policy)
    {
        var proxy = new TcpProxy { StatPrefix = statPrefix, Cluster = cluster };
        ApplyPolicy(proxy, policy);
        return Pack(proxy);
    }

    private static TrafficPolicy? PolicyOf(ServiceIndex index, VirtualService vs, RouteDestination destination, int port)
    {
        var host = Names.Qualify(destination.Host, vs.Meta.Namespace);
        var rule = index.FindDestinationRule(host);
        var subset = destination.Subset is { } name ? rule?.Subsets.FirstOrDefault(s => s.Name == name) : null;
        return TrafficPolicy.Effective(rule?.Policy, subset?.Policy, destination.Port ?? port);
    }

    private static void ApplyPolicy(TcpProxy proxy, TrafficPolicy? policy)
    {
        if (policy?.ConnectionPool?.Tcp is not { } tcp)
        {
            return;
        }
        if (tcp.IdleTimeout is { } idle)
        {
            proxy.IdleTimeout = Duration.FromTimeSpan(idle);
        }
        if (tcp.MaxConnectionDuration is { } duration)
        {
            proxy.MaxDownstreamConnectionDuration = Duration.FromTimeSpan(duration);
        }
    }

    private static NetworkFilter Pack(TcpProxy proxy) => new() { Name = FilterName, TypedConfig = Any.Pack(proxy) };
}
