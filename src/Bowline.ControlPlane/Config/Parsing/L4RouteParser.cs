namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// A VirtualService's <c>tcp</c> and <c>tls</c> routes with Istio's rules (validateTCPRoute, validateTLSRoute,
/// validateSniHost): a route needs destinations, a <c>tls</c> route at least one match and every match at least one
/// SNI host that is one of the VirtualService's hosts (or under its wildcard); subnets, ports, labels and gateway
/// names are checked as for HTTP matches.
/// </summary>
internal static class L4RouteParser
{
    public static L4Route? Parse(FieldReader route, IReadOnlyList<string> vsHosts, bool appliesToGateway, bool tls)
    {
        var before = route.ErrorCount;
        var matches = route.MapList("match").Select(m => Match(m, vsHosts, appliesToGateway, tls)).ToList();
        var destinations = Destinations(route);
        route.Finish();
        if (tls && matches.Count == 0)
        {
            route.Error("match", "a TLS route must have at least one match, with the sniHosts it serves");
        }
        if (destinations.Count == 0 && route.ErrorCount == before)
        {
            route.Error("route", $"a {(tls ? "TLS" : "TCP")} route needs route destinations");
        }
        return route.ErrorCount == before ? new L4Route(matches, destinations) : null;
    }

    private static L4Match Match(FieldReader match, IReadOnlyList<string> vsHosts, bool appliesToGateway, bool tls)
    {
        var sniHosts = tls ? match.StringList("sniHosts") : [];
        if (tls && sniHosts.Count == 0)
        {
            match.Error("sniHosts", "a TLS match must have at least one SNI host (the server names it routes)");
        }
        foreach (var sni in sniHosts)
        {
            SniHost(match, sni, vsHosts, appliesToGateway);
        }
        var subnets = match.StringList("destinationSubnets");
        foreach (var subnet in subnets)
        {
            if (!System.Net.IPNetwork.TryParse(subnet, out _) && !System.Net.IPAddress.TryParse(subnet, out _))
            {
                match.Error("destinationSubnets", $"'{subnet}' is not an IP address or a CIDR block such as 10.0.0.0/16");
            }
        }
        var port = match.Int("port", min: 1, max: 65535);
        var gateways = HttpMatchParser.Gateways(match);
        var (sourceLabels, sourceNamespace) = HttpMatchParser.Source(match);
        match.Finish();
        return new L4Match(port, gateways, subnets, sourceLabels, sourceNamespace) { SniHosts = sniHosts };
    }

    /// <summary>Istio's validateSniHost: a (wildcard) domain, an IP only with a warning, and a subset of one of the VirtualService's hosts.</summary>
    private static void SniHost(FieldReader match, string sni, IReadOnlyList<string> vsHosts, bool appliesToGateway)
    {
        var problem = !appliesToGateway && sni == "*" ? "the wildcard SNI host * is only allowed in a VirtualService bound to a gateway" : IstioRules.WildcardDomain(sni);
        if (problem is not null)
        {
            if (System.Net.IPAddress.TryParse(sni, out _))
            {
                match.Warning("sniHosts", $"using an IP address ('{sni}') goes against the SNI specification, and most clients do not send one");
                return;
            }
            match.Error("sniHosts", problem);
            return;
        }
        if (!vsHosts.Any(host => IsSubsetOf(sni, host)))
        {
            match.Error("sniHosts", $"SNI host '{sni}' is not one of the VirtualService's hosts [{string.Join(", ", vsHosts)}] nor under one of their wildcards; add it to hosts");
        }
    }

    /// <summary>Istio's <c>host.Name.SubsetOf</c>: every name <paramref name="name"/> matches is matched by <paramref name="of"/>.</summary>
    public static bool IsSubsetOf(string name, string of) =>
        of == "*"
        || string.Equals(name, of, StringComparison.OrdinalIgnoreCase)
        || (of.StartsWith("*.", StringComparison.Ordinal) && name.Length > of.Length - 1 && name.EndsWith(of[1..], StringComparison.OrdinalIgnoreCase));

    /// <summary>Istio's <c>RouteDestination</c>s (a destination and a weight, no headers): weights are proportions, not all zero.</summary>
    private static List<RouteDestination> Destinations(FieldReader route)
    {
        var destinations = new List<RouteDestination>();
        var list = route.MapList("route");
        long total = 0;
        foreach (var entry in list)
        {
            var destinationReader = entry.Map("destination", required: true);
            var weight = entry.Int("weight", min: 0);
            entry.Finish();
            total += weight ?? 0;
            if (destinationReader is not null && HttpRouteFeatureParser.Destination(destinationReader) is { } d)
            {
                destinations.Add(new RouteDestination(d.Host, d.Subset, d.Port, weight ?? (list.Count == 1 ? 100 : 0)));
            }
        }
        if (list.Count > 1 && total == 0)
        {
            route.Error("route", "every destination has weight 0; give at least one destination a positive weight");
        }
        else if (total > uint.MaxValue)
        {
            route.Error("route", $"the weights add up to {total}, more than Envoy's limit of {uint.MaxValue}; scale them down (they are proportions)");
        }
        return destinations;
    }
}
