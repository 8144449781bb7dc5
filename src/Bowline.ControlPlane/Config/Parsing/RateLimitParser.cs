namespace Bowline.ControlPlane.Config.Parsing;

/// <summary><c>bowline.dev/v1alpha1 RateLimit</c>: the service, which of its paths, the token bucket and the answer when it is empty.</summary>
internal static class RateLimitParser
{
    /// <summary>Envoy's local rate limit refuses a fill interval under 50 ms.</summary>
    private static readonly TimeSpan MinFillInterval = TimeSpan.FromMilliseconds(50);

    public static MeshResource? Parse(ResourceMeta meta, FieldReader spec)
    {
        var before = spec.ErrorCount;
        var host = BowlineRules.ServiceHost(spec);
        var port = spec.Int("port", min: 1, max: 65535);
        var matches = new List<StringMatch>();
        foreach (var match in spec.MapList("match"))
        {
            if (match.Map("uri") is { } uri)
            {
                if (StringMatchParser.Parse(uri, StringMatchRules.Uri, out var empty) is { } parsed)
                {
                    matches.Add(parsed);
                }
                else if (empty)
                {
                    uri.Error("give one of exact, prefix or regex");
                }
            }
            else
            {
                match.Error("uri", "is required: a RateLimit match selects requests by path (uri exact, prefix or regex)");
            }
            match.Finish();
        }
        var bucket = TokenBucket(spec.Map("tokenBucket"));
        var perSource = PerSource(spec.Map("perSource"));
        if (!spec.Has("tokenBucket") && !spec.Has("perSource"))
        {
            spec.Error("tokenBucket", "is required unless perSource is given: give tokenBucket (each calling sidecar's bucket), perSource (a bucket per calling identity at the service), or both");
        }
        var status = spec.Int("statusCode", min: 400, max: 599);
        if (status is { } code && !Enum.IsDefined((Envoy.Type.V3.StatusCode)code))
        {
            // Envoy's HttpStatus takes only the codes its enum names.
            spec.Error("statusCode", $"{code} is not a status code Envoy can send; use a standard code such as 429 or 503");
        }
        var headers = new List<(string, string)>();
        foreach (var (name, value) in spec.StringMap("responseHeaders").OrderBy(h => h.Key, StringComparer.Ordinal))
        {
            if ((name == "*" ? "'*' is not a header name" : IstioRules.CorsHeaderName(name) ?? IstioRules.HeaderToChange(name)) is { } nameProblem)
            {
                spec.Error("responseHeaders", nameProblem);
            }
            else if (IstioRules.HeaderValue(value) is { } valueProblem)
            {
                spec.Error("responseHeaders", $"{name}: {valueProblem}");
            }
            else if (value.Contains('%', StringComparison.Ordinal))
            {
                // Envoy would expand %VARIABLE% here and Bowline's proxy would not: refuse rather than differ.
                spec.Error("responseHeaders", $"{name}: '%' substitutions are not supported in RateLimit response headers; remove the '%'");
            }
            else
            {
                headers.Add((name.ToLowerInvariant(), value));
            }
        }
        if (host is null || spec.ErrorCount != before)
        {
            return null;
        }
        return new RateLimit(meta, host, port, matches, bucket) { StatusCode = status ?? 429, ResponseHeaders = headers, PerSource = perSource };
    }

    private static PerSourceLimit? PerSource(FieldReader? perSource)
    {
        if (perSource is null)
        {
            return null;
        }
        var before = perSource.ErrorCount;
        var bucket = TokenBucket(perSource.Map("tokenBucket", required: true));
        var overrides = new List<(string, TokenBucketSettings)>();
        foreach (var entry in perSource.MapList("overrides"))
        {
            var principal = entry.String("principal", required: true);
            var own = TokenBucket(entry.Map("tokenBucket", required: true));
            if (principal is not null && PrincipalProblem(principal) is { } problem)
            {
                entry.Error("principal", problem);
            }
            else if (principal is not null && overrides.Any(o => o.Item1 == principal))
            {
                entry.Error("principal", $"{principal} is given twice; keep one override per identity");
            }
            else if (principal is not null && own is not null)
            {
                overrides.Add((principal, own));
            }
            entry.Finish();
        }
        perSource.Finish();
        return bucket is null || perSource.ErrorCount != before ? null : new PerSourceLimit(bucket, overrides);
    }

    /// <summary>An override names one identity exactly, in Istio's principal form (as an AuthorizationPolicy's <c>principals</c>).</summary>
    private static string? PrincipalProblem(string principal)
    {
        if (principal.StartsWith("spiffe://", StringComparison.Ordinal))
        {
            return $"'{principal}': write the principal without spiffe://, as Istio's principals are ({principal["spiffe://".Length..]})";
        }
        if (principal.Contains('*', StringComparison.Ordinal))
        {
            return $"'{principal}': wildcards are not supported here; name one identity, trust-domain/ns/NAMESPACE/sa/SERVICE_ACCOUNT (every other identity already has perSource.tokenBucket)";
        }
        var parts = principal.Split('/');
        return parts is [{ Length: > 0 }, "ns", { Length: > 0 }, "sa", { Length: > 0 }]
            ? null
            : $"'{principal}' is not a principal; write trust-domain/ns/NAMESPACE/sa/SERVICE_ACCOUNT, such as cluster.local/ns/default/sa/productpage";
    }

    private static TokenBucketSettings? TokenBucket(FieldReader? bucket)
    {
        if (bucket is null)
        {
            return null;
        }
        var before = bucket.ErrorCount;
        var max = bucket.Int("maxTokens", required: true, min: 1);
        var perFill = bucket.Int("tokensPerFill", min: 1) ?? 1;
        var interval = bucket.IstioDuration("fillInterval");
        if (!bucket.Has("fillInterval"))
        {
            bucket.Error("fillInterval", "is required: how often tokensPerFill tokens are added, such as 1s");
        }
        else if (interval is { } i && i < MinFillInterval)
        {
            bucket.Error("fillInterval", $"{i.TotalMilliseconds}ms is too short: Envoy's local rate limit needs at least 50ms; raise tokensPerFill instead");
        }
        bucket.Finish();
        return max is null || interval is null || bucket.ErrorCount != before ? null : new TokenBucketSettings(max.Value, perFill, interval.Value);
    }
}
