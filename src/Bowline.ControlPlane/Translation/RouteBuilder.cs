using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Route.V3;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Turns VirtualServices into Envoy routes as Istio does: one Envoy route per Istio match, in order, first match wins;
/// routes whose source conditions (sourceLabels, sourceNamespace, gateways) exclude the proxy being translated for
/// are left out of its config.
/// </summary>
internal static class RouteBuilder
{
    /// <summary>The routes of one service port as seen from the mesh (sidecars and proxyless clients).</summary>
    public static IEnumerable<Route> ForService(ServiceIndex index, MeshService service, ServicePort port, ProxyNode node, SnapshotBuilder snapshot)
    {
        var virtualService = MeshVirtualService(index, service, snapshot);
        if (virtualService is null)
        {
            return [DefaultRoute(index, service, port, node.Kind)];
        }
        return Translate(index, virtualService, port.Number, gateway: null, node, snapshot);
    }

    /// <summary>The routes of a VirtualService bound to a gateway, for one gateway port.</summary>
    public static IEnumerable<Route> ForGateway(ServiceIndex index, VirtualService virtualService, int port, Gateway gateway, ProxyNode node, SnapshotBuilder snapshot) =>
        Translate(index, virtualService, port, gateway, node, snapshot);

    /// <summary>Istio's gateway reference: <c>name</c> means a gateway in the VirtualService's namespace, <c>namespace/name</c> any.</summary>
    public static bool Refers(string reference, string fromNamespace, Gateway gateway) =>
        reference.Contains('/', StringComparison.Ordinal)
            ? reference == $"{gateway.Meta.Namespace}/{gateway.Meta.Name}"
            : reference == gateway.Meta.Name && fromNamespace == gateway.Meta.Namespace;

    /// <summary>The VirtualService that routes <paramref name="service"/> for sidecars: the first by namespace and name; others are warned about.</summary>
    public static VirtualService? MeshVirtualService(ServiceIndex index, MeshService service, SnapshotBuilder snapshot)
    {
        VirtualService? chosen = null;
        foreach (var vs in index.Config.VirtualServices.Where(v => v.AppliesToMesh && !v.IsDelegate)
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

    private static List<Route> Translate(ServiceIndex index, VirtualService vs, int port, Gateway? gateway, ProxyNode node, SnapshotBuilder snapshot)
    {
        var routes = new List<Route>();
        foreach (var (http, owner, name) in DelegateResolver.Flatten(index, vs, snapshot))
        {
            var matches = http.Matches.Where(m => AppliesTo(m, port, owner.Meta.Namespace, gateway, node)).ToList();
            if (http.Matches.Count > 0 && matches.Count == 0)
            {
                continue;
            }
            var catchAll = false;
            foreach (var match in matches.Count == 0 ? [null] : matches.Cast<HttpMatch?>())
            {
                var routeMatch = match is null ? new RouteMatch { Prefix = "/" } : RouteMatchBuilder.Build(match);
                var route = BuildRoute(index, owner, http, routeMatch, match?.Name ?? name, port, node, snapshot);
                if (route is null)
                {
                    continue;
                }
                if (match?.StatPrefix is { } statPrefix)
                {
                    route.StatPrefix = statPrefix;
                }
                routes.Add(route);
                // Istio's rule: nothing after a route that matches every request can be reached, so it is left out.
                if (RouteMatchBuilder.IsCatchAll(routeMatch))
                {
                    catchAll = true;
                    break;
                }
            }
            if (catchAll)
            {
                break;
            }
        }
        return routes;
    }

    /// <summary>
    /// Istio's source rule for one match: with gateways listed, the proxy must be one of them (the reserved <c>mesh</c>
    /// for sidecars); otherwise the proxy's labels must include sourceLabels and its namespace equal sourceNamespace.
    /// </summary>
    private static bool AppliesTo(HttpMatch match, int port, string vsNamespace, Gateway? gateway, ProxyNode node)
    {
        if (match.Port is { } p && p != port)
        {
            return false;
        }
        if (match.Gateways.Count > 0)
        {
            return gateway is null ? match.Gateways.Contains("mesh") : match.Gateways.Any(g => Refers(g, vsNamespace, gateway));
        }
        return ServiceIndex.Matches(node.Labels, match.SourceLabels)
            && (match.SourceNamespace is null || match.SourceNamespace == node.Namespace);
    }

    private static Route? BuildRoute(ServiceIndex index, VirtualService vs, HttpRoute http, RouteMatch match, string name, int port, ProxyNode node, SnapshotBuilder snapshot)
    {
        var route = new Route { Name = name, Match = match };
        RouteFeatureBuilder.ApplyHeaders(route, http.Headers);
        if (http.Redirect is { } redirect)
        {
            if (RouteFeatureBuilder.Redirect(redirect, port) is not { } action)
            {
                // The parser warned: Envoy cannot send this code, and Istio drops the route too.
                return null;
            }
            route.Redirect = action;
        }
        else if (http.DirectResponse is { } direct)
        {
            route.DirectResponse = RouteFeatureBuilder.DirectResponse(direct);
        }
        else if (Action(index, vs, http, route, port, node.Kind, snapshot) is { } action)
        {
            route.Route_ = action;
        }
        else
        {
            return null;
        }
        route.Decorator = new Decorator { Operation = Operation(route, vs.Meta.Name, port) };
        if (http.Fault is { } fault)
        {
            RouteFeatureBuilder.PerFilter(route, EnvoyBuilders.FaultFilter, RouteFeatureBuilder.Fault(fault));
        }
        if (http.Cors is { } cors)
        {
            if (node.Kind == ProxyKind.ProxylessGrpc)
            {
                // gRPC clients NACK per-route config for a filter they do not have, and CORS is a browser concern.
                snapshot.Warn($"{vs.Meta} ({vs.Meta.File}): corsPolicy is not sent to proxyless gRPC clients, which have no CORS filter");
            }
            else
            {
                RouteFeatureBuilder.PerFilter(route, EnvoyBuilders.CorsFilter, RouteFeatureBuilder.Cors(cors));
            }
        }
        return route;
    }

    private static RouteAction? Action(ServiceIndex index, VirtualService vs, HttpRoute http, Route route, int port, ProxyKind kind, SnapshotBuilder snapshot)
    {
        if (http.Destinations.Count == 0)
        {
            return null;
        }
        var action = new RouteAction();
        ApplyTimeout(action, http.Timeout, kind);
        if (http.Rewrite is { } rewrite)
        {
            if (rewrite.UriRegex is { } regex)
            {
                action.RegexRewrite = new Envoy.Type.Matcher.V3.RegexMatchAndSubstitute
                {
                    Pattern = new Envoy.Type.Matcher.V3.RegexMatcher { Regex = regex.Match },
                    Substitution = regex.Rewrite,
                };
            }
            else if (rewrite.Uri is { } uri)
            {
                // Istio's choice: prefix_rewrite whatever the match kind (with an exact or regex path the whole path is replaced).
                action.PrefixRewrite = uri;
            }
        }
        if ((http.Rewrite?.Authority ?? RouteFeatureBuilder.Authority(http.Headers)) is { } authority)
        {
            action.HostRewriteLiteral = authority;
        }
        foreach (var mirror in http.Mirrors)
        {
            var cluster = Cluster(index, vs, new RouteDestination(mirror.Host, mirror.Subset, mirror.Port, 0), port, snapshot);
            if (RouteFeatureBuilder.Mirror(cluster, mirror) is { } policy)
            {
                action.RequestMirrorPolicies.Add(policy);
            }
        }
        var consistentHash = false;
        if (http.Destinations.Count == 1)
        {
            var destination = http.Destinations[0];
            var (cluster, hash) = Resolve(index, vs, destination, port, snapshot);
            action.Cluster = cluster;
            // A single destination's headers go on the route itself; its authority only if the route set none.
            RouteFeatureBuilder.ApplyHeaders(route, destination.Headers);
            if (action.HostRewriteSpecifierCase == RouteAction.HostRewriteSpecifierOneofCase.None && RouteFeatureBuilder.Authority(destination.Headers) is { } destinationAuthority)
            {
                action.HostRewriteLiteral = destinationAuthority;
            }
            if (HashPolicyBuilder.Build(hash) is { } hashPolicy)
            {
                action.HashPolicy.Add(hashPolicy);
                consistentHash = true;
            }
        }
        else
        {
            var weighted = new WeightedCluster();
            foreach (var destination in http.Destinations.Where(d => d.Weight > 0))
            {
                var (cluster, hash) = Resolve(index, vs, destination, port, snapshot);
                var clusterWeight = new WeightedCluster.Types.ClusterWeight { Name = cluster, Weight = (uint)destination.Weight };
                if (destination.Headers is { } headers)
                {
                    var (requestAdd, requestRemove) = RouteFeatureBuilder.Translate(headers.Request);
                    var (responseAdd, responseRemove) = RouteFeatureBuilder.Translate(headers.Response);
                    clusterWeight.RequestHeadersToAdd.AddRange(requestAdd);
                    clusterWeight.RequestHeadersToRemove.AddRange(requestRemove);
                    clusterWeight.ResponseHeadersToAdd.AddRange(responseAdd);
                    clusterWeight.ResponseHeadersToRemove.AddRange(responseRemove);
                    if (RouteFeatureBuilder.Authority(headers) is { } destinationAuthority)
                    {
                        clusterWeight.HostRewriteLiteral = destinationAuthority;
                    }
                }
                if (HashPolicyBuilder.Build(hash) is { } hashPolicy)
                {
                    action.HashPolicy.Add(hashPolicy);
                }
                weighted.Clusters.Add(clusterWeight);
            }
            action.WeightedClusters = weighted;
        }
        // Istio keeps retrying on a new host unless a single consistently hashed destination pins the request to one.
        if (RetryPolicyBuilder.Build(http.Retries, consistentHash) is { } retry)
        {
            action.RetryPolicy = retry;
        }
        return action;
    }

    private static (string Cluster, ConsistentHash? Hash) Resolve(ServiceIndex index, VirtualService vs, RouteDestination destination, int port, SnapshotBuilder snapshot)
    {
        var cluster = Cluster(index, vs, destination, port, snapshot);
        if (cluster == IstioNames.BlackHoleCluster)
        {
            return (cluster, null);
        }
        var host = Names.Qualify(destination.Host, vs.Meta.Namespace);
        var clusterPort = int.Parse(cluster.Split('|')[1], System.Globalization.CultureInfo.InvariantCulture);
        return (cluster, HashPolicyBuilder.For(index.FindDestinationRule(host), destination.Subset, clusterPort));
    }

    /// <summary>
    /// The cluster a destination names, or <c>BlackHoleCluster</c> (503 UH) when it names a host, port or subset the mesh
    /// does not have: every route's cluster then exists, so the snapshot passes its consistency check, and the user
    /// gets a warning that says what to fix.
    /// </summary>
    private static string Cluster(ServiceIndex index, VirtualService vs, RouteDestination destination, int port, SnapshotBuilder snapshot) =>
        DestinationCluster(index, vs, destination, port, http: true, snapshot);

    /// <summary>
    /// Istio's GetDestinationCluster: the destination's port, else the service's only port of the kind, else the
    /// listener's; a host, port or subset the mesh lacks gives <c>BlackHoleCluster</c> and a warning.
    /// </summary>
    /// <param name="http">An HTTP route (the service's HTTP ports count) or a TCP/TLS route (its TCP-proxied ports).</param>
    public static string DestinationCluster(ServiceIndex index, VirtualService vs, RouteDestination destination, int port, bool http, SnapshotBuilder snapshot)
    {
        var where = $"{vs.Meta} ({vs.Meta.File})";
        var fate = http ? $"requests routed to it get 503 from {IstioNames.BlackHoleCluster}" : $"connections routed to it are closed ({IstioNames.BlackHoleCluster})";
        var host = Names.Qualify(destination.Host, vs.Meta.Namespace);
        if (index.FindService(host) is not { } service)
        {
            snapshot.Warn($"{where}: destination host {destination.Host} is not a known service; {fate}. Check the name or add a Service or ServiceEntry");
            return IstioNames.BlackHoleCluster;
        }
        var ports = service.Ports.Where(p => http ? p.IsHttp : p.IsProxied).ToList();
        var destinationPort = destination.Port ?? (ports.Count == 1 ? ports[0].Number : port);
        if (ports.All(p => p.Number != destinationPort))
        {
            var kind = http ? "HTTP port" : "TCP port";
            snapshot.Warn($"{where}: destination {destination.Host} has no {kind} {destinationPort}; {fate}. Set destination.port to one of {string.Join(", ", ports.Select(p => p.Number))}");
            return IstioNames.BlackHoleCluster;
        }
        if (destination.Subset is { } subset && index.FindDestinationRule(host)?.Subsets.Any(s => s.Name == subset) != true)
        {
            snapshot.Warn($"{where}: subset {subset} of {host} is not defined by any DestinationRule; {fate}. Add the subset to the DestinationRule for {host}");
            return IstioNames.BlackHoleCluster;
        }
        return IstioNames.OutboundCluster(destinationPort, destination.Subset, host);
    }

    /// <summary>A service without a VirtualService: Istio's default route, with its default retries and the DestinationRule's hash key.</summary>
    private static Route DefaultRoute(ServiceIndex index, MeshService service, ServicePort port, ProxyKind kind)
    {
        var action = new RouteAction { Cluster = IstioNames.OutboundCluster(port.Number, null, service.Hostname) };
        ApplyTimeout(action, null, kind);
        if (HashPolicyBuilder.Build(HashPolicyBuilder.For(index.FindDestinationRule(service.Hostname), null, port.Number)) is { } hash)
        {
            action.HashPolicy.Add(hash);
        }
        // Istio's default route always avoids hosts already tried, hashing or not.
        action.RetryPolicy = RetryPolicyBuilder.Build(null, consistentHash: false);
        return new Route { Name = "default", Match = new RouteMatch { Prefix = "/" }, Route_ = action, Decorator = new Decorator { Operation = $"{service.Hostname}:{port.Number}/*" } };
    }

    /// <summary>
    /// Istio's span name for a route (GetRouteOperation): <c>host:port</c> of its one destination, else the
    /// VirtualService's name and the port, then the matched path (a prefix ends in <c>*</c>).
    /// </summary>
    private static string Operation(Route route, string vsName, int port)
    {
        var path = route.Match.PathSpecifierCase switch
        {
            RouteMatch.PathSpecifierOneofCase.Prefix => route.Match.Prefix + "*",
            RouteMatch.PathSpecifierOneofCase.Path => route.Match.Path,
            RouteMatch.PathSpecifierOneofCase.SafeRegex => route.Match.SafeRegex.Regex,
            _ => "/*",
        };
        if (route.Route_?.Cluster is { Length: > 0 } cluster && cluster.Split('|') is ["outbound", var clusterPort, _, var host])
        {
            return $"{host}:{clusterPort}{path}";
        }
        return $"{vsName}:{port}{path}";
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
