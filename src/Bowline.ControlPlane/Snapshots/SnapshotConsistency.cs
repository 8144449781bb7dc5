using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Listener.V3;
using Google.Protobuf;

namespace Bowline.ControlPlane.Snapshots;

/// <summary>
/// go-control-plane's rule, applied before anything is served: every route configuration a listener names over RDS
/// exists, and every EDS cluster has its load assignment. A route naming a missing cluster is allowed, as in Envoy
/// (the request gets 503 NC); translation reports it as a warning instead.
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
}
