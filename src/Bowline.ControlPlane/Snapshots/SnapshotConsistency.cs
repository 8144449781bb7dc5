using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf;

namespace Bowline.ControlPlane.Snapshots;

/// <summary>
/// go-control-plane's rule, applied before anything is served: every route configuration a listener names over RDS
/// exists, every cluster a route sends traffic to exists, and every EDS cluster has its load assignment. Translation
/// sends routes to hosts, ports or subsets the mesh lacks to BlackHoleCluster, so a failure here is a translation bug.
/// </summary>
internal static class SnapshotConsistency
{
    public static IReadOnlyList<string> Check(IReadOnlyDictionary<string, Dictionary<string, IMessage>> byType)
    {
        var problems = new List<string>();
        var routes = byType[TypeUrls.RouteConfiguration];
        foreach (Listener listener in byType[TypeUrls.Listener].Values)
        {
            foreach (var name in ResourceReferences.RouteConfigNames(listener))
            {
                if (!routes.ContainsKey(name))
                {
                    problems.Add($"listener {listener.Name} refers to route configuration {name}, which does not exist");
                }
            }
        }
        var clusters = byType[TypeUrls.Cluster];
        var inline = byType[TypeUrls.Listener].Values.Cast<Listener>()
            .SelectMany(l => l.FilterChains)
            .SelectMany(c => c.Filters)
            .Select(f => f.TypedConfig is { } any && any.TryUnpack<HttpConnectionManager>(out var hcm) ? hcm.RouteConfig : null)
            .OfType<RouteConfiguration>();
        foreach (var route in routes.Values.Cast<RouteConfiguration>().Concat(inline))
        {
            foreach (var cluster in ClusterNames(route).Where(c => !clusters.ContainsKey(c)).Distinct())
            {
                problems.Add($"route configuration {route.Name} sends traffic to cluster {cluster}, which does not exist");
            }
        }
        var endpoints = byType[TypeUrls.ClusterLoadAssignment];
        foreach (Cluster cluster in byType[TypeUrls.Cluster].Values)
        {
            if (ResourceReferences.EndpointsName(cluster) is { } name && !endpoints.ContainsKey(name))
            {
                problems.Add($"EDS cluster {cluster.Name} has no load assignment {name}");
            }
        }
        return problems;
    }

    private static IEnumerable<string> ClusterNames(RouteConfiguration route) =>
        route.VirtualHosts.SelectMany(v => v.Routes).Select(r => r.Route_).OfType<RouteAction>().SelectMany(a =>
            a.ClusterSpecifierCase == RouteAction.ClusterSpecifierOneofCase.WeightedClusters ? a.WeightedClusters.Clusters.Select(c => c.Name) : [a.Cluster]);
}
