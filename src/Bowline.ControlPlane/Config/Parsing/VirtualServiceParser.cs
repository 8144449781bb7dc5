namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Istio <c>VirtualService</c>: HTTP routes with their matches, destinations and every route feature, TCP and TLS
/// routes (<see cref="L4RouteParser"/>), validated with
/// Istio's rules (<c>pkg/config/validation</c>): what Istio's webhook rejects is an error here, what it accepts loads.
/// </summary>
internal static class VirtualServiceParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var hosts = spec.StringList("hosts");
        var gateways = spec.StringList("gateways");
        var isDelegate = hosts.Count == 0;
        if (isDelegate && gateways.Count > 0)
        {
            spec.Error("gateways", "a VirtualService without hosts is a delegate, and a delegate cannot name gateways; add hosts or remove gateways");
        }
        foreach (var gateway in gateways)
        {
            if (IstioRules.GatewayName(gateway, out var warning) is { } problem)
            {
                spec.Error("gateways", problem);
            }
            else if (warning is not null)
            {
                spec.Warning("gateways", warning);
            }
        }
        // Istio's rule: bound to any gateway other than `mesh`, the VirtualService is a gateway one (wildcard `*` allowed).
        var appliesToGateway = gateways.Any(g => g != "mesh");
        var hostsValid = true;
        foreach (var host in hosts)
        {
            if (IstioRules.WildcardDomain(host) is { } problem && !System.Net.IPAddress.TryParse(host, out _))
            {
                spec.Error("hosts", problem);
                hostsValid = false;
            }
            else if (!appliesToGateway && host == "*")
            {
                spec.Error("hosts", "the wildcard host * is not allowed in a VirtualService for the mesh (sidecars); name the hosts, or bind it to a gateway");
                hostsValid = false;
            }
        }
        if (hostsValid)
        {
            for (var i = 0; i < hosts.Count; i++)
            {
                for (var j = i + 1; j < hosts.Count; j++)
                {
                    if (HostsOverlap(hosts[i], hosts[j]))
                    {
                        spec.Error("hosts", $"hosts {hosts[i]} and {hosts[j]} overlap; list each host once");
                    }
                }
            }
        }
        var routes = new List<HttpRoute>();
        foreach (var http in spec.MapList("http"))
        {
            if (ParseRoute(http, isDelegate, appliesToGateway) is { } route)
            {
                routes.Add(route);
            }
        }
        if (isDelegate && spec.Has("tcp"))
        {
            spec.Error("tcp", "a delegate VirtualService cannot have tcp routes");
        }
        if (isDelegate && spec.Has("tls"))
        {
            spec.Error("tls", "a delegate VirtualService cannot have tls routes");
        }
        if (!spec.Has("http") && !spec.Has("tcp") && !spec.Has("tls"))
        {
            spec.Error("http", "a VirtualService needs http, tcp or tls routes");
        }
        var tcp = spec.MapList("tcp").Select(r => L4RouteParser.Parse(r, hosts, appliesToGateway, tls: false)).OfType<L4Route>().ToList();
        var tls = spec.MapList("tls").Select(r => L4RouteParser.Parse(r, hosts, appliesToGateway, tls: true)).OfType<L4Route>().ToList();
        var exportTo = spec.StringList("exportTo");
        if (IstioRules.ExportTo(exportTo, meta.Namespace, serviceEntry: false) is { } exportProblem)
        {
            spec.Error("exportTo", exportProblem);
        }
        return new VirtualService(meta, hosts, gateways, routes) { ExportTo = exportTo, Tcp = tcp, Tls = tls };
    }

    /// <summary>Istio's duplicate-host rule: two hosts overlap when they are equal or one's wildcard covers the other.</summary>
    private static bool HostsOverlap(string a, string b)
    {
        static bool Covers(string wildcard, string host) =>
            wildcard == "*" || (wildcard.StartsWith("*.", StringComparison.Ordinal) && host.EndsWith(wildcard[1..], StringComparison.OrdinalIgnoreCase));
        return string.Equals(a, b, StringComparison.OrdinalIgnoreCase) || Covers(a, b) || Covers(b, a);
    }

    private static HttpRoute? ParseRoute(FieldReader http, bool inDelegate, bool appliesToGateway)
    {
        var before = http.ErrorCount;
        var name = http.String("name");
        var matches = http.MapList("match").Select(m => HttpMatchParser.Parse(m, appliesToGateway)).ToList();
        var authorities = new List<string>();
        var headers = HttpRouteFeatureParser.Headers(http, authorities);
        var destinations = Destinations(http);
        var timeout = http.IstioDuration("timeout");
        var retries = HttpRouteFeatureParser.Retries(http);
        var fault = HttpRouteFeatureParser.Fault(http);
        var mirrors = HttpRouteFeatureParser.Mirrors(http);
        var cors = HttpRouteFeatureParser.Cors(http);
        var rewrite = HttpRouteFeatureParser.Rewrite(http);
        var redirect = HttpRouteFeatureParser.Redirect(http, matches);
        var directResponse = HttpRouteFeatureParser.DirectResponse(http);
        DelegateReference? delegateTo = null;
        if (http.Map("delegate") is { } delegateReader)
        {
            var delegateName = delegateReader.String("name", required: true);
            var delegateNamespace = delegateReader.String("namespace");
            delegateReader.Finish();
            if (delegateName is not null)
            {
                delegateTo = new DelegateReference(delegateName, delegateNamespace);
            }
        }
        http.Finish();

        if (rewrite?.Authority is { } rewriteAuthority)
        {
            authorities.Insert(0, rewriteAuthority);
        }
        if (authorities.Count > 1)
        {
            http.Error("headers", $"the authority is set more than once ({string.Join(", ", authorities)}); set it in one place: rewrite.authority or one headers.request entry");
        }
        Conflicts(http, inDelegate);
        if (http.ErrorCount != before)
        {
            return null;
        }
        return new HttpRoute(name, matches, destinations, timeout)
        {
            Retries = retries,
            Redirect = redirect,
            DirectResponse = directResponse,
            Rewrite = rewrite,
            Headers = headers,
            Fault = fault,
            Mirrors = mirrors,
            Cors = cors,
            Delegate = delegateTo,
        };
    }

    /// <summary>Istio's rules on which parts of a route exclude which.</summary>
    private static void Conflicts(FieldReader http, bool inDelegate)
    {
        bool Has(string key) => http.Has(key);
        if (Has("delegate"))
        {
            if (inDelegate)
            {
                http.Error("delegate", "a delegate VirtualService's route cannot delegate again");
                return;
            }
            foreach (var key in new[] { "redirect", "route" }.Where(Has))
            {
                http.Error(key, $"a route with delegate cannot also have {key}; the delegate's routes say where traffic goes");
            }
            return;
        }
        if (Has("redirect"))
        {
            foreach (var key in new[] { "route", "fault", "rewrite", "directResponse" }.Where(Has))
            {
                http.Error(key, $"a route with redirect cannot also have {key}; split it into two routes");
            }
        }
        else if (Has("directResponse"))
        {
            foreach (var key in new[] { "route", "fault", "rewrite" }.Where(Has))
            {
                http.Error(key, $"a route with directResponse cannot also have {key}; split it into two routes");
            }
        }
        else if (!Has("route"))
        {
            http.Error("route", "an HTTP route needs route destinations, a redirect, a directResponse or a delegate");
        }
    }

    private static List<RouteDestination> Destinations(FieldReader http)
    {
        var destinations = new List<RouteDestination>();
        var routeList = http.MapList("route");
        long total = 0;
        foreach (var route in routeList)
        {
            var destinationReader = route.Map("destination", required: true);
            // Weights are proportions: Istio requires only that each is non-negative and, with several, that not all are 0.
            var weight = route.Int("weight", min: 0);
            var headers = HttpRouteFeatureParser.Headers(route, []);
            route.Finish();
            var destination = destinationReader is null ? null : HttpRouteFeatureParser.Destination(destinationReader);
            total += weight ?? 0;
            if (destination is { } d)
            {
                destinations.Add(new RouteDestination(d.Host, d.Subset, d.Port, weight ?? (routeList.Count == 1 ? 100 : 0)) { Headers = headers });
            }
        }
        if (routeList.Count > 1 && total == 0)
        {
            http.Error("route", "every destination has weight 0; give at least one destination a positive weight");
        }
        else if (total > uint.MaxValue)
        {
            http.Error("route", $"the weights add up to {total}, more than Envoy's limit of {uint.MaxValue}; scale them down (they are proportions)");
        }
        return destinations;
    }
}
