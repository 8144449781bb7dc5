using Bowline.Proxy.Clusters;
using Bowline.Proxy.Routing;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// Turns accepted xDS resources into a candidate <see cref="ProxySnapshot"/>: the build-time half of "build-time
/// factory, run-time object". Only what changed is recompiled: clusters and host sets are staged per resource (an
/// EDS-only update touches neither listeners nor routes), a route table whose RDS resource is unchanged is reused,
/// and so is a listener whose resource and route tables are. Every unsupported or invalid field throws
/// <see cref="ProxyConfigException"/> naming the resource and field, which the xDS client sends back as a NACK.
/// </summary>
/// <remarks>The cluster changes it stages are published by <see cref="ClusterManager.Commit"/> when the candidate goes live.</remarks>
internal sealed class ProxyConfigCompiler(ConnectionPools pools, ClusterManager clusters, ClusterCompiler clusterCompiler, RouteCompiler routeCompiler, ListenerCompiler listenerCompiler)
{
    public ProxySnapshot Compile(long version, IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> accepted, IReadOnlyDictionary<string, string> versionInfo, ProxySnapshot? previous = null)
    {
        var cds = Of(accepted, TypeUrls.Cluster);
        var liveEndpoints = clusterCompiler.Stage(cds, Of(accepted, TypeUrls.ClusterLoadAssignment));

        var routes = Of(accepted, TypeUrls.RouteConfiguration);
        var tables = new Dictionary<string, RouteTable>(StringComparer.Ordinal);
        RouteTable? Rds(string name)
        {
            if (tables.TryGetValue(name, out var table))
            {
                return table;
            }
            if (!routes.TryGetValue(name, out var resource))
            {
                return null;
            }
            var config = (RouteConfiguration)resource.Resource;
            table = previous?.RouteTables.GetValueOrDefault(name) is { } old && (ReferenceEquals(old.Source, config) || config.Equals(old.Source)) ? old : routeCompiler.Compile(config);
            if (config.ValidateClusters == true)
            {
                // Envoy's validate_clusters: a route naming a cluster CDS does not have rejects the whole configuration.
                var missing = table.ClusterNames.FirstOrDefault(c => !cds.ContainsKey(c));
                if (missing is not null)
                {
                    throw new ProxyConfigException($"route configuration {name}: validate_clusters is set and cluster {missing} is not in CDS");
                }
            }
            return tables[name] = table;
        }

        var listeners = new Dictionary<string, CompiledListener>(StringComparer.Ordinal);
        foreach (var resource in Of(accepted, TypeUrls.Listener).Values)
        {
            var listener = (Listener)resource.Resource;
            var old = previous?.Listeners.GetValueOrDefault(listener.Name);
            if (old is not null && (ReferenceEquals(old.Source, listener) || listener.Equals(old.Source))
                && old.Chains.All(c => c.RouteConfigName is null || ReferenceEquals(c.Routes, Rds(c.RouteConfigName))))
            {
                listeners[listener.Name] = old;
                continue;
            }
            listeners[listener.Name] = listenerCompiler.Compile(listener, Rds, routeCompiler.Compile);
        }
        var bound = new Dictionary<string, string>();
        foreach (var listener in listeners.Values)
        {
            foreach (var address in listener.Addresses)
            {
                if (!bound.TryAdd(address.ToString(), listener.Name))
                {
                    throw new ProxyConfigException($"listener {listener.Name}: address {address} is already used by listener {bound[address.ToString()]}");
                }
            }
        }

        pools.Prune(cds.Keys.ToHashSet(StringComparer.Ordinal), liveEndpoints);
        return new ProxySnapshot(version, listeners, clusters, tables, accepted, versionInfo);
    }

    private static IReadOnlyDictionary<string, AcceptedResource> Of(IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> accepted, string type) =>
        accepted.TryGetValue(type, out var resources) ? resources : new Dictionary<string, AcceptedResource>();
}
