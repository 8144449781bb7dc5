using Bowline.Proxy.Configuration;
using Bowline.Xds;
using Envoy.Admin.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Admin;

/// <summary>Envoy's <c>/config_dump</c>: the xDS resources as applied, in the <c>envoy.admin.v3.ConfigDump</c> shape, so Envoy tooling reads it.</summary>
internal static class ConfigDumpBuilder
{
    public static ConfigDump Build(ProxySnapshot snapshot)
    {
        var listeners = new ListenersConfigDump { VersionInfo = snapshot.VersionInfo.GetValueOrDefault(TypeUrls.Listener, "") };
        foreach (var resource in Resources(snapshot, TypeUrls.Listener))
        {
            listeners.DynamicListeners.Add(new ListenersConfigDump.Types.DynamicListener
            {
                Name = resource.Name,
                ActiveState = new ListenersConfigDump.Types.DynamicListenerState { VersionInfo = resource.VersionInfo, Listener = Any.Pack(resource.Resource), LastUpdated = Timestamp.FromDateTimeOffset(resource.LastUpdated) },
            });
        }
        var clusters = new ClustersConfigDump { VersionInfo = snapshot.VersionInfo.GetValueOrDefault(TypeUrls.Cluster, "") };
        foreach (var resource in Resources(snapshot, TypeUrls.Cluster))
        {
            clusters.DynamicActiveClusters.Add(new ClustersConfigDump.Types.DynamicCluster { VersionInfo = resource.VersionInfo, Cluster = Any.Pack(resource.Resource), LastUpdated = Timestamp.FromDateTimeOffset(resource.LastUpdated) });
        }
        var routes = new RoutesConfigDump();
        foreach (var resource in Resources(snapshot, TypeUrls.RouteConfiguration))
        {
            routes.DynamicRouteConfigs.Add(new RoutesConfigDump.Types.DynamicRouteConfig { VersionInfo = resource.VersionInfo, RouteConfig = Any.Pack(resource.Resource), LastUpdated = Timestamp.FromDateTimeOffset(resource.LastUpdated) });
        }
        var endpoints = new EndpointsConfigDump();
        foreach (var resource in Resources(snapshot, TypeUrls.ClusterLoadAssignment))
        {
            endpoints.DynamicEndpointConfigs.Add(new EndpointsConfigDump.Types.DynamicEndpointConfig { VersionInfo = resource.VersionInfo, EndpointConfig = Any.Pack(resource.Resource), LastUpdated = Timestamp.FromDateTimeOffset(resource.LastUpdated) });
        }
        return new ConfigDump { Configs = { Any.Pack(listeners), Any.Pack(clusters), Any.Pack(routes), Any.Pack(endpoints) } };
    }

    private static IEnumerable<AcceptedResource> Resources(ProxySnapshot snapshot, string typeUrl) =>
        snapshot.Accepted.TryGetValue(typeUrl, out var resources) ? resources.Values.OrderBy(r => r.Name, StringComparer.Ordinal) : [];
}
