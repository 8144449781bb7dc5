namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Reads one <c>HTTPMatchRequest</c> with Istio's rules for each condition.</summary>
internal static class HttpMatchParser
{
    /// <summary>A match's <c>gateways</c>, each a valid gateway reference (shared by HTTP, TCP and TLS matches).</summary>
    public static IReadOnlyList<string> Gateways(FieldReader match)
    {
        var gateways = match.StringList("gateways");
        foreach (var gateway in gateways)
        {
            if (IstioRules.GatewayName(gateway, out var warning) is { } problem)
            {
                match.Error("gateways", problem);
            }
            else if (warning is not null)
            {
                match.Warning("gateways", warning);
            }
        }
        return gateways;
    }

    /// <summary>A match's <c>sourceLabels</c> and <c>sourceNamespace</c> (shared by HTTP, TCP and TLS matches).</summary>
    public static (IReadOnlyDictionary<string, string> Labels, string? Namespace) Source(FieldReader match)
    {
        var sourceLabels = match.StringMap("sourceLabels");
        if (IstioRules.Labels(sourceLabels) is { } labelProblem)
        {
            match.Error("sourceLabels", labelProblem);
        }
        var sourceNamespace = match.String("sourceNamespace");
        if (sourceNamespace is not null && !IstioRules.IsDns1123Label(sourceNamespace))
        {
            match.Error("sourceNamespace", $"'{sourceNamespace}' is not a valid namespace name");
        }
        return (sourceLabels, sourceNamespace);
    }

    /// <param name="appliesToGateway">Whether the VirtualService is bound to a gateway (JWT claim matches are allowed only there).</param>
    public static HttpMatch Parse(FieldReader match, bool appliesToGateway)
    {
        var name = match.String("name");
        var uri = Single(match, "uri", StringMatchRules.Uri);
        var scheme = Single(match, "scheme", StringMatchRules.Strict);
        var method = Single(match, "method", StringMatchRules.Strict);
        var authority = Single(match, "authority", StringMatchRules.Strict);
        var headers = Headers(match, "headers", appliesToGateway, without: false);
        var withoutHeaders = Headers(match, "withoutHeaders", appliesToGateway, without: true);
        var queryParams = new Dictionary<string, StringMatch?>(StringComparer.Ordinal);
        foreach (var (param, value) in match.Entries("queryParams", (reader, path) => Entry(match, reader, path, StringMatchRules.Strict, presenceRegex: false)))
        {
            if (value.Valid)
            {
                queryParams[param] = value.Match;
            }
        }
        var ignoreUriCase = match.Bool("ignoreUriCase") ?? false;
        var port = match.Int("port", min: 1, max: 65535);
        var gateways = Gateways(match);
        var (sourceLabels, sourceNamespace) = Source(match);
        var statPrefix = match.String("statPrefix");
        match.Finish();
        return new HttpMatch(name, uri, method, headers, gateways, port)
        {
            Scheme = scheme,
            Authority = authority,
            WithoutHeaders = withoutHeaders,
            QueryParams = queryParams,
            IgnoreUriCase = ignoreUriCase,
            SourceLabels = sourceLabels,
            SourceNamespace = sourceNamespace,
            StatPrefix = statPrefix,
        };
    }

    /// <summary>uri, scheme, method, authority: <c>{}</c> is accepted (for the header-like ones Istio then matches any value).</summary>
    private static StringMatch? Single(FieldReader match, string key, StringMatchRules rules) =>
        match.Map(key) is { } reader ? StringMatchParser.Parse(reader, rules, out _) : null;

    private static Dictionary<string, StringMatch?> Headers(FieldReader match, string key, bool appliesToGateway, bool without)
    {
        var result = new Dictionary<string, StringMatch?>(StringComparer.OrdinalIgnoreCase);
        foreach (var (header, value) in match.Entries(key, (reader, path) => Entry(match, reader, path, StringMatchRules.Strict, presenceRegex: without)))
        {
            if (IstioRules.IsJwtClaim(header))
            {
                if (!appliesToGateway)
                {
                    match.ErrorAt($"{match.Path}.{key}.{header}", "JWT claim routing is only allowed in a VirtualService bound to a gateway (Istio's rule); bind it to a gateway or match a header");
                    continue;
                }
                // Routing on claims needs the route to match jwt_authn's metadata, which Bowline does not translate; a real header of this name cannot exist.
                match.Warning(key, $"JWT claim routing ({header}) is not supported by Bowline yet (RequestAuthentication validates tokens, but routes cannot match their claims): this condition never holds");
            }
            else if (IstioRules.MatchHeaderName(header) is { } problem)
            {
                match.ErrorAt($"{match.Path}.{key}.{header}", problem);
                continue;
            }
            if (value.Valid)
            {
                result[header.ToLowerInvariant()] = value.Match;
            }
        }
        return result;
    }

    /// <summary>
    /// One header or query parameter condition. A YAML null is an error (Istio: a header match cannot be null);
    /// <c>{}</c> means "present". In withoutHeaders, Istio reads <c>regex: "*"</c> as presence too (not as RE2).
    /// </summary>
    private static (bool Valid, StringMatch? Match) Entry(FieldReader parent, FieldReader? reader, string path, StringMatchRules rules, bool presenceRegex)
    {
        if (reader is null)
        {
            parent.ErrorAt(path, "a match cannot be null; write {} to match any value, or give exact, prefix or regex");
            return (false, null);
        }
        if (presenceRegex && reader.Has(StringMatch.Regex) && !reader.Has(StringMatch.Exact) && !reader.Has(StringMatch.Prefix) && reader.String(StringMatch.Regex) == "*")
        {
            reader.Finish();
            return (true, null);
        }
        var before = parent.ErrorCount;
        var match = StringMatchParser.Parse(reader, rules, out var empty);
        return (match is not null || (empty && parent.ErrorCount == before), match);
    }
}
