using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Envoy.Config.Route.V3;

using Bowline.ControlPlane.Snapshots;

namespace Bowline.ControlPlane.Translation;

/// <summary>Turns VirtualServices into Envoy routes: one Envoy route per Istio match, in order, first match wins.</summary>
internal static class RouteBuilder
{
    /// <summary>The routes of one service port as seen from the mesh (sidecars and proxyless clients).</summary>
    public static IEnumerable<Route> ForService(ServiceIndex index, MeshService service, ServicePort port, ProxyKind kind, SnapshotBuilder snapshot)
    {
        var virtualService = MeshVirtualService(index, service, snapshot);
        if (virtualService is null)
        {
            return [DefaultRoute(IstioNames.OutboundCluster(port.Number, null, service.Hostname), kind)];
        }
        return Translate(index, virtualService, port.Number, gateway: null, kind, snapshot);
    }

    /// <summary>The routes of a VirtualService bound to a gateway, for one gateway port.</summary>
    public static IEnumerable<Route> ForGateway(ServiceIndex index, VirtualService virtualService, int port, Gateway gateway, SnapshotBuilder snapshot) =>
        Translate(index, virtualService, port, gateway, ProxyKind.Gateway, snapshot);

    /// <summary>Istio's gateway reference: <c>name</c> means a gateway in the VirtualService's namespace, <c>namespace/name</c> any.</summary>
    public static bool Refers(string reference, string fromNamespace, Gateway gateway) =>
        reference.Contains('/', StringComparison.Ordinal)
            ? reference == $"{gateway.Meta.Namespace}/{gateway.Meta.Name}"
            : reference == gateway.Meta.Name && fromNamespace == gateway.Meta.Namespace;

    private static VirtualService? MeshVirtualService(ServiceIndex index, MeshService service, SnapshotBuilder snapshot)
    {
        VirtualService? chosen = null;
        foreach (var vs in index.Config.VirtualServices.Where(v => v.AppliesToMesh)
                     .OrderBy(v => v.Meta.Namespace, StringComparer.Ordinal).ThenBy(v => v.Meta.Name, StringComparer.Ordinal))
        {
            if (!vs.Hosts.Any(h => Names.Qualify(h, vs.Meta.Namespace) == service.Hostname))
            {
                continue;
            }
            if (chosen is null)
            {
                chosen = vs;
            }
            else
            {
                snapshot.Warn($"{vs.Meta} ({vs.Meta.File}) also routes {service.Hostname}, already routed by {chosen.Meta}; only {chosen.Meta} applies. Merge the two");
            }
        }
        return chosen;
    }

    private static IEnumerable<Route> Translate(ServiceIndex index, VirtualService vs, int port, Gateway? gateway, ProxyKind kind, SnapshotBuilder snapshot)
    {
        var routes = new List<Route>();
        for (var i = 0; i < vs.Http.Count; i++)
        {
            var http = vs.Http[i];
            var action = Action(index, vs, http, port, kind, snapshot);
            if (action is null)
            {
                continue;
            }
            var matches = http.Matches.Where(m => AppliesTo(m, port, vs.Meta.Namespace, gateway)).ToList();
            if (http.Matches.Count > 0 && matches.Count == 0)
            {
                continue;
            }
            if (matches.Count == 0)
            {
                routes.Add(new Route { Name = http.Name ?? $"{vs.Meta.Name}.{i}", Match = new RouteMatch { Prefix = "/" }, Route_ = action });
                continue;
            }
            foreach (var match in matches)
            {
                routes.Add(new Route { Name = match.Name ?? http.Name ?? $"{vs.Meta.Name}.{i}", Match = Match(match), Route_ = action });
            }
        }
        return routes;
    }

    private static bool AppliesTo(HttpMatch match, int port, string vsNamespace, Gateway? gateway)
    {
        if (match.Port is { } p && p != port)
        {
            return false;
        }
        if (match.Gateways.Count == 0)
        {
            return true;
        }
        return gateway is null ? match.Gateways.Contains("mesh") : match.Gateways.Any(g => Refers(g, vsNamespace, gateway));
    }

    private static RouteMatch Match(HttpMatch match)
    {
        var routeMatch = new RouteMatch();
        EnvoyBuilders.SetPath(routeMatch, match.Uri);
        foreach (var (name, value) in match.Headers.OrderBy(h => h.Key, StringComparer.Ordinal))
        {
            routeMatch.Headers.Add(new HeaderMatcher { Name = name, StringMatch = EnvoyBuilders.StringMatcher(value) });
        }
        if (match.Method is { } method)
        {
            routeMatch.Headers.Add(new HeaderMatcher { Name = ":method", StringMatch = EnvoyBuilders.StringMatcher(method) });
        }
        return routeMatch;
    }

    private static RouteAction? Action(ServiceIndex index, VirtualService vs, HttpRoute http, int port, ProxyKind kind, SnapshotBuilder snapshot)
    {
        var clusters = new List<(string Name, int Weight)>();
        foreach (var destination in http.Destinations)
        {
            if (destination.Weight > 0 || http.Destinations.Count == 1)
            {
                clusters.Add((Cluster(index, vs, destination, port, snapshot), destination.Weight));
            }
        }
        if (clusters.Count == 0)
        {
            return null;
        }
        var action = new RouteAction();
        if (clusters.Count == 1)
        {
            action.Cluster = clusters[0].Name;
        }
        else
        {
            var weighted = new WeightedCluster();
            foreach (var (name, weight) in clusters)
            {
                weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = name, Weight = (uint)weight });
            }
            action.WeightedClusters = weighted;
        }
        ApplyTimeout(action, http.Timeout, kind);
        return action;
    }

    /// <summary>
    /// The cluster a destination names, or <c>BlackHoleCluster</c> (503 UH) when it names a host, port or subset the mesh
    /// does not have: every route's cluster then exists, so the snapshot passes its consistency check, and the user
    /// gets a warning that says what to fix.
    /// </summary>
    private static string Cluster(ServiceIndex index, VirtualService vs, RouteDestination destination, int port, SnapshotBuilder snapshot)
    {
        var where = $"{vs.Meta} ({vs.Meta.File})";
        var host = Names.Qualify(destination.Host, vs.Meta.Namespace);
        if (index.FindService(host) is not { } service)
        {
            snapshot.Warn($"{where}: destination host {destination.Host} is not a known service; requests routed to it get 503 from {IstioNames.BlackHoleCluster}. Check the name or add a Service or ServiceEntry");
            return IstioNames.BlackHoleCluster;
        }
        var http = service.Ports.Where(p => p.IsHttp).ToList();
        var destinationPort = destination.Port ?? (http.Count == 1 ? http[0].Number : port);
        if (http.All(p => p.Number != destinationPort))
        {
            snapshot.Warn($"{where}: destination {destination.Host} has no HTTP port {destinationPort}; requests routed to it get 503 from {IstioNames.BlackHoleCluster}. Set destination.port to one of {string.Join(", ", http.Select(p => p.Number))}");
            return IstioNames.BlackHoleCluster;
        }
        if (destination.Subset is { } subset && index.FindDestinationRule(host)?.Subsets.Any(s => s.Name == subset) != true)
        {
            snapshot.Warn($"{where}: subset {subset} of {host} is not defined by any DestinationRule; requests routed to it get 503 from {IstioNames.BlackHoleCluster}. Add the subset to the DestinationRule for {host}");
            return IstioNames.BlackHoleCluster;
        }
        return IstioNames.OutboundCluster(destinationPort, destination.Subset, host);
    }

    private static Route DefaultRoute(string cluster, ProxyKind kind)
    {
        var action = new RouteAction { Cluster = cluster };
        ApplyTimeout(action, null, kind);
        return new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, Route_ = action };
    }

    /// <summary>Istio disables Envoy's 15 s default: no timeout unless the VirtualService sets one. gRPC clients take none here.</summary>
    private static void ApplyTimeout(RouteAction action, TimeSpan? timeout, ProxyKind kind)
    {
        if (kind != ProxyKind.ProxylessGrpc)
        {
            action.Timeout = Google.Protobuf.WellKnownTypes.Duration.FromTimeSpan(timeout ?? TimeSpan.Zero);
        }
    }
}
