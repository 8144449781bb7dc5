using System.Text.RegularExpressions;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Istio <c>VirtualService</c>: HTTP routes with matches, weighted destinations and timeouts.</summary>
internal static class VirtualServiceParser
{
    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var hosts = spec.StringList("hosts", required: true);
        if (hosts.Count == 0)
        {
            spec.Error("hosts", "at least one host is required");
        }
        var gateways = spec.StringList("gateways");
        var routes = new List<HttpRoute>();
        foreach (var http in spec.MapList("http"))
        {
            if (ParseRoute(http) is { } route)
            {
                routes.Add(route);
            }
        }
        spec.Unsupported("tcp", "TCP routing");
        spec.Unsupported("tls", "TLS routing");
        spec.StringList("exportTo");
        return new VirtualService(meta, hosts, gateways, routes);
    }

    private static HttpRoute? ParseRoute(FieldReader http)
    {
        var name = http.String("name");
        var matches = http.MapList("match").Select(ParseMatch).OfType<HttpMatch>().ToList();
        var destinations = new List<RouteDestination>();
        var routeList = http.MapList("route");
        foreach (var route in routeList)
        {
            var destination = route.Map("destination", required: true);
            var weight = route.Int("weight", min: 0, max: 100);
            route.Unsupported("headers", "header manipulation");
            route.Finish();
            if (destination is null)
            {
                continue;
            }
            var host = destination.String("host", required: true);
            var subset = destination.String("subset");
            int? port = null;
            if (destination.Map("port") is { } portReader)
            {
                port = portReader.Int("number", required: true, min: 1, max: 65535);
                portReader.Finish();
            }
            destination.Finish();
            if (host is not null)
            {
                destinations.Add(new RouteDestination(host, subset, port, weight ?? (routeList.Count == 1 ? 100 : 0)));
            }
        }
        if (destinations.Count > 1 && destinations.Sum(d => d.Weight) == 0)
        {
            http.Error("route", "every destination has weight 0; give weights that sum to 100");
        }
        var timeout = http.Duration("timeout");

        http.Unsupported("retries", "retries");
        http.Unsupported("fault", "fault injection");
        http.Unsupported("mirror", "mirroring");
        http.Unsupported("mirrors", "mirroring");
        http.Unsupported("mirrorPercentage", "mirroring");
        http.Unsupported("corsPolicy", "CORS policy");
        http.Unsupported("headers", "header manipulation");
        http.Unsupported("rewrite", "rewrite");
        http.Unsupported("delegate", "delegation");
        var hasRedirect = http.Has("redirect") || http.Has("directResponse");
        http.Unsupported("redirect", "redirect");
        http.Unsupported("directResponse", "directResponse");
        http.Finish();
        if (destinations.Count == 0 && !hasRedirect)
        {
            http.Error("route", "an HTTP route needs at least one route destination");
            return null;
        }
        return new HttpRoute(name, matches, destinations, timeout);
    }

    private static HttpMatch? ParseMatch(FieldReader match)
    {
        var name = match.String("name");
        var uri = ParseStringMatch(match.Map("uri"));
        var method = ParseStringMatch(match.Map("method"));
        var headers = new Dictionary<string, StringMatch>(StringComparer.OrdinalIgnoreCase);
        if (match.Map("headers") is { } headerReader)
        {
            foreach (var header in HeaderNames(match))
            {
                if (ParseStringMatch(headerReader.Map(header, required: true)) is { } value)
                {
                    headers[header.ToLowerInvariant()] = value;
                }
            }
            headerReader.Finish();
        }
        var gateways = match.StringList("gateways");
        var port = match.Int("port", min: 1, max: 65535);
        match.Unsupported("authority", "authority matching");
        match.Unsupported("scheme", "scheme matching");
        match.Unsupported("queryParams", "query parameter matching");
        match.Unsupported("withoutHeaders", "withoutHeaders");
        match.Unsupported("sourceLabels", "sourceLabels");
        match.Unsupported("sourceNamespace", "sourceNamespace");
        match.Unsupported("ignoreUriCase", "ignoreUriCase");
        match.String("statPrefix");
        match.Finish();
        return new HttpMatch(name, uri, method, headers, gateways, port);
    }

    private static IEnumerable<string> HeaderNames(FieldReader match) => match.HeaderKeys();

    private static StringMatch? ParseStringMatch(FieldReader? reader)
    {
        if (reader is null)
        {
            return null;
        }
        StringMatch? result = null;
        var count = 0;
        foreach (var kind in new[] { StringMatch.Exact, StringMatch.Prefix, StringMatch.Regex })
        {
            if (reader.String(kind) is { } value)
            {
                count++;
                result = new StringMatch(kind, value);
            }
        }
        reader.Finish();
        if (count != 1)
        {
            reader.Error("give exactly one of exact, prefix or regex");
            return null;
        }
        if (result!.Kind == StringMatch.Regex)
        {
            try
            {
                // The same engine and anchoring the proxy uses, so what passes here cannot be NACKed there.
                _ = new Regex($"^(?:{result.Value})$", RegexOptions.CultureInvariant | RegexOptions.NonBacktracking);
            }
            catch (Exception e) when (e is ArgumentException or NotSupportedException)
            {
                reader.Error(StringMatch.Regex, $"'{result.Value}' is not a valid regular expression: {e.Message}");
                return null;
            }
        }
        return result;
    }
}
