using Bowline.ControlPlane.Config;
using Envoy.Config.Route.V3;

namespace Bowline.ControlPlane.Translation;

/// <summary>An Istio <c>HTTPMatchRequest</c> as Envoy's <c>RouteMatch</c>, field for field as Istio translates it.</summary>
internal static class RouteMatchBuilder
{
    public static RouteMatch Build(HttpMatch match)
    {
        var routeMatch = new RouteMatch();
        var headers = new List<HeaderMatcher>();
        foreach (var (name, value) in match.Headers)
        {
            headers.Add(Header(name, value));
        }
        foreach (var (name, value) in match.WithoutHeaders)
        {
            var header = Header(name, value);
            header.InvertMatch = true;
            // Envoy rejects treat_missing_header_as_empty beside present_match; otherwise a missing header is "" and so not a match.
            if (value is not null)
            {
                header.TreatMissingHeaderAsEmpty = true;
            }
            headers.Add(header);
        }
        routeMatch.Headers.AddRange(headers.OrderBy(h => h.Name, StringComparer.Ordinal));
        EnvoyBuilders.SetPath(routeMatch, match.Uri);
        routeMatch.CaseSensitive = !match.IgnoreUriCase;
        if (match.Method is { } method)
        {
            routeMatch.Headers.Add(Header(":method", method));
        }
        if (match.Authority is { } authority)
        {
            routeMatch.Headers.Add(Header(":authority", authority));
        }
        if (match.Scheme is { } scheme)
        {
            routeMatch.Headers.Add(Header(":scheme", scheme));
        }
        foreach (var (name, value) in match.QueryParams.OrderBy(q => q.Key, StringComparer.Ordinal))
        {
            var query = new QueryParameterMatcher { Name = name };
            if (value is null)
            {
                query.PresentMatch = true;
            }
            else
            {
                query.StringMatch = EnvoyBuilders.StringMatcher(value);
            }
            routeMatch.QueryParameters.Add(query);
        }
        return routeMatch;
    }

    /// <summary>Istio's rule: a match with no kind (<c>{}</c>) means the header is present with any value.</summary>
    private static HeaderMatcher Header(string name, StringMatch? value) => value is null
        ? new HeaderMatcher { Name = name, PresentMatch = true }
        : new HeaderMatcher { Name = name, StringMatch = EnvoyBuilders.StringMatcher(value) };

    /// <summary>Istio's catch-all test: a route after one that matches every request can never be reached, so Istio stops there.</summary>
    public static bool IsCatchAll(RouteMatch match) =>
        match.PathSpecifierCase switch
        {
            RouteMatch.PathSpecifierOneofCase.Prefix => match.Prefix == "/",
            RouteMatch.PathSpecifierOneofCase.SafeRegex => match.SafeRegex.Regex == ".*",
            _ => false,
        } && match.Headers.Count == 0 && match.QueryParameters.Count == 0;
}
