using System.Globalization;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Reads the optional parts of an <c>HTTPRoute</c> (retries, fault, redirect, rewrite, headers, mirrors, CORS) with Istio's rules.</summary>
internal static class HttpRouteFeatureParser
{
    private const int DirectResponseWarnBytes = 100 * 1024;
    private const int DirectResponseMaxBytes = 1024 * 1024;

    public static HttpRetry? Retries(FieldReader http)
    {
        if (http.Map("retries") is not { } retries)
        {
            return null;
        }
        var before = http.ErrorCount;
        var attempts = retries.Int("attempts") ?? 0;
        if (attempts < 0)
        {
            retries.Error("attempts", $"{attempts} is negative; give the number of retries, or 0 to turn retries off");
        }
        var perTryTimeout = retries.IstioDuration("perTryTimeout");
        var retryOn = retries.String("retryOn");
        var remoteLocalities = retries.Bool("retryRemoteLocalities");
        var ignorePreviousHosts = retries.Bool("retryIgnorePreviousHosts");
        var backoff = retries.IstioDuration("backoff");
        retries.Finish();
        if (attempts == 0 && (retries.Has("perTryTimeout") || retryOn is { Length: > 0 } || remoteLocalities is not null))
        {
            retries.Error("attempts", "attempts is 0 (retries off) but perTryTimeout, retryOn or retryRemoteLocalities is set; give attempts > 0 or remove them");
        }
        if (retryOn is { Length: > 0 })
        {
            foreach (var policy in retryOn.Split(','))
            {
                // Istio's rule, exactly: each comma-separated item is a known HTTP status code or an Envoy condition (no spaces).
                var isStatus = int.TryParse(policy, NumberStyles.Integer, CultureInfo.InvariantCulture, out var code) && IstioRules.KnownStatusCodes.Contains(code);
                if (!isStatus && !IstioRules.RetryOnPolicies.Contains(policy))
                {
                    retries.Error("retryOn", $"'{policy}' is not a retry condition; use Envoy's (5xx, gateway-error, reset, connect-failure, refused-stream, retriable-4xx, retriable-status-codes, cancelled, deadline-exceeded, internal, resource-exhausted, unavailable, ...) or HTTP status codes, separated by commas without spaces");
                }
            }
        }
        return http.ErrorCount == before ? new HttpRetry(attempts, perTryTimeout, retryOn, ignorePreviousHosts, backoff) { RetryRemoteLocalities = remoteLocalities == true } : null;
    }

    public static HttpFault? Fault(FieldReader http)
    {
        if (http.Map("fault") is not { } fault)
        {
            return null;
        }
        FaultDelay? delay = null;
        FaultAbort? abort = null;
        var delayReader = fault.Map("delay");
        var abortReader = fault.Map("abort");
        fault.Finish();
        if (delayReader is null && abortReader is null)
        {
            fault.Error("a fault needs an abort, a delay, or both");
            return null;
        }
        if (delayReader is not null)
        {
            var percentage = Percentage(delayReader, "percentage");
            var legacy = delayReader.Int("percent", min: 0, max: 100);
            var fixedDelay = delayReader.IstioDuration("fixedDelay");
            if (delayReader.Has("exponentialDelay"))
            {
                delayReader.IstioDuration("exponentialDelay");
                delayReader.Error("exponentialDelay", "exponentialDelay is not supported (Istio rejects it too); use fixedDelay");
            }
            delayReader.Finish();
            if (fixedDelay is { } d)
            {
                delay = new FaultDelay(d, percentage, legacy ?? 0);
                if (percentage is null && legacy is null)
                {
                    delayReader.Warning("percentage", "no percentage is given, so (as in Istio) no request is delayed; set percentage.value: 100 to delay every request");
                }
            }
            else if (!delayReader.Has("exponentialDelay"))
            {
                delayReader.Warning("fixedDelay", "the delay has no fixedDelay, so (as in Istio) it has no effect");
            }
        }
        if (abortReader is not null)
        {
            var percentage = Percentage(abortReader, "percentage");
            var httpStatus = abortReader.Int("httpStatus");
            var grpcStatus = abortReader.String("grpcStatus");
            var http2Error = abortReader.String("http2Error");
            abortReader.Finish();
            var kinds = (httpStatus is null ? 0 : 1) + (grpcStatus is null ? 0 : 1) + (http2Error is null ? 0 : 1);
            if (kinds > 1)
            {
                abortReader.Error("give only one of httpStatus, grpcStatus or http2Error");
            }
            else if (http2Error is not null)
            {
                abortReader.Error("http2Error", "HTTP/2 error aborts are not supported (Istio rejects them too); use httpStatus or grpcStatus");
            }
            else if (httpStatus is { } status)
            {
                // Istio's check reads 200-600 though its message says 200-599; Envoy NACKs 600, so 599 is the last accepted.
                if (status is < 200 or > 599)
                {
                    abortReader.Error("httpStatus", $"HTTP status {status} is not in range 200-599");
                }
                else
                {
                    abort = new FaultAbort(status, null, percentage);
                }
            }
            else if (grpcStatus is not null)
            {
                if (!IstioRules.GrpcStatusCodes.TryGetValue(grpcStatus, out var code))
                {
                    abortReader.Error("grpcStatus", $"'{grpcStatus}' is not a gRPC status name; use one such as UNAVAILABLE, NOT_FOUND or INTERNAL");
                }
                else
                {
                    abort = new FaultAbort(null, code, percentage);
                }
            }
            else
            {
                abortReader.Warning("httpStatus", "the abort has no httpStatus or grpcStatus, so (as in Istio) it has no effect");
            }
            if (abort is not null && percentage is null)
            {
                abortReader.Warning("percentage", "no percentage is given, so (as in Istio) no request is aborted; set percentage.value: 100 to abort every request");
            }
        }
        return delay is null && abort is null ? null : new HttpFault(delay, abort);
    }

    /// <summary>Istio's <c>Percent</c> message (<c>{value: 12.5}</c>).</summary>
    public static double? Percentage(FieldReader reader, string key)
    {
        if (reader.Map(key) is not { } percent)
        {
            return null;
        }
        var value = percent.Double("value") ?? 0;
        percent.Finish();
        if (IstioRules.Percentage(value) is { } problem)
        {
            reader.Error(key, problem);
            return null;
        }
        return value;
    }

    public static HttpRedirect? Redirect(FieldReader http, IReadOnlyList<HttpMatch> matches)
    {
        if (http.Map("redirect") is not { } redirect)
        {
            return null;
        }
        var uri = redirect.String("uri");
        var prefixRewrite = redirect.String("prefixRewrite");
        var authority = redirect.String("authority");
        var scheme = redirect.String("scheme");
        var port = redirect.Long("port", min: 0, max: uint.MaxValue);
        var deriveText = redirect.String("derivePort");
        var code = redirect.Long("redirectCode", min: 0, max: uint.MaxValue) ?? 0;
        redirect.Finish();
        RedirectDerivePort? derive = deriveText switch
        {
            null => null,
            "FROM_PROTOCOL_DEFAULT" => RedirectDerivePort.FromProtocolDefault,
            "FROM_REQUEST_PORT" => RedirectDerivePort.FromRequestPort,
            _ => null,
        };
        var before = http.ErrorCount;
        if (deriveText is not null && derive is null)
        {
            redirect.Error("derivePort", $"'{deriveText}' must be FROM_PROTOCOL_DEFAULT or FROM_REQUEST_PORT");
        }
        if (port is not null && deriveText is not null)
        {
            redirect.Error("give only one of port or derivePort");
        }
        if (!string.IsNullOrEmpty(uri) && !string.IsNullOrEmpty(prefixRewrite))
        {
            redirect.Error("give only one of uri or prefixRewrite");
        }
        if (!string.IsNullOrEmpty(prefixRewrite) && matches.Any(m => m.Uri is { Kind: not StringMatch.Prefix }))
        {
            redirect.Error("prefixRewrite", "prefixRewrite needs every uri match of the route to be a prefix match");
        }
        if (string.IsNullOrEmpty(uri) && string.IsNullOrEmpty(prefixRewrite) && string.IsNullOrEmpty(authority) && port is null && deriveText is null && string.IsNullOrEmpty(scheme))
        {
            redirect.Error("a redirect must give uri, prefixRewrite, authority, scheme, port or derivePort");
        }
        if (code != 0 && code is < 300 or > 399)
        {
            redirect.Error("redirectCode", $"{code} is not a redirect code; use a 3xx code such as 301 or 302");
        }
        else if (code is not (0 or 301 or 302 or 303 or 307 or 308))
        {
            redirect.Warning("redirectCode", $"redirect code {code} cannot be sent (Envoy knows 301, 302, 303, 307 and 308); as in Istio, this route is left out");
        }
        if (!string.IsNullOrEmpty(scheme) && scheme is not ("http" or "https"))
        {
            redirect.Error("scheme", $"'{scheme}' must be http or https");
        }
        if (port is > 65535)
        {
            redirect.Error("port", $"port {port} must be in the range 1..65535");
        }
        if (http.ErrorCount != before)
        {
            return null;
        }
        return new HttpRedirect(NullIfEmpty(uri), NullIfEmpty(prefixRewrite), NullIfEmpty(authority), NullIfEmpty(scheme), port is > 0 ? (int)port : null, derive, (int)code);
    }

    public static HttpDirectResponse? DirectResponse(FieldReader http)
    {
        if (http.Map("directResponse") is not { } direct)
        {
            return null;
        }
        var status = direct.Long("status", min: 0, max: uint.MaxValue);
        string? text = null;
        byte[]? bytes = null;
        if (direct.Map("body") is { } body)
        {
            text = body.String("string");
            var base64 = body.String("bytes");
            body.Finish();
            if (text is not null && base64 is not null)
            {
                body.Error("give only one of string or bytes");
            }
            else if (base64 is not null)
            {
                try
                {
                    bytes = Convert.FromBase64String(base64);
                }
                catch (FormatException)
                {
                    body.Error("bytes", "expected base64-encoded bytes");
                }
            }
            var size = bytes?.Length ?? (text is null ? 0 : System.Text.Encoding.UTF8.GetByteCount(text));
            if (size > DirectResponseMaxBytes)
            {
                body.Error($"the body is {size} bytes; a direct response body must be under 1 MB (it is pushed to every proxy)");
            }
            else if (size > DirectResponseWarnBytes)
            {
                direct.Warning("body", $"the body is {size} bytes; large direct responses are pushed to every proxy and slow config distribution");
            }
        }
        direct.Finish();
        if (!direct.Has("status"))
        {
            direct.Error("status", "is required");
            return null;
        }
        if (status is not { } s || s is < 200 or > 599)
        {
            direct.Error("status", $"HTTP status {status} is not in range 200-599");
            return null;
        }
        return new HttpDirectResponse((int)s, text, bytes);
    }

    public static HttpRewrite? Rewrite(FieldReader http)
    {
        if (http.Map("rewrite") is not { } rewrite)
        {
            return null;
        }
        var uri = NullIfEmpty(rewrite.String("uri"));
        var authority = NullIfEmpty(rewrite.String("authority"));
        RegexRewrite? regex = null;
        var before = http.ErrorCount;
        if (rewrite.Map("uriRegexRewrite") is { } regexReader)
        {
            var match = regexReader.String("match");
            var substitution = regexReader.String("rewrite");
            regexReader.Finish();
            if (string.IsNullOrEmpty(match) || string.IsNullOrEmpty(substitution))
            {
                regexReader.Error("uriRegexRewrite needs both match and rewrite");
            }
            else if (StringMatchParser.Regex(regexReader, "match", match) is not null)
            {
                regex = new RegexRewrite(match, substitution);
            }
        }
        rewrite.Finish();
        if (uri is not null && rewrite.Has("uriRegexRewrite"))
        {
            rewrite.Error("give only one of uri or uriRegexRewrite");
        }
        if (uri is null && !rewrite.Has("uriRegexRewrite") && authority is null)
        {
            rewrite.Error("a rewrite must give uri, uriRegexRewrite or authority");
        }
        return http.ErrorCount == before ? new HttpRewrite(uri, regex, authority) : null;
    }

    /// <summary>Istio's <c>Headers</c> (on a route or a destination); <paramref name="authoritySet"/> collects authority writes so only one is allowed.</summary>
    public static HeaderOperations? Headers(FieldReader owner, List<string> authoritySet)
    {
        if (owner.Map("headers") is not { } headers)
        {
            return null;
        }
        var before = owner.ErrorCount;
        var request = Operation(headers.Map("request"), isRequest: true, authoritySet);
        var response = Operation(headers.Map("response"), isRequest: false, authoritySet);
        headers.Finish();
        return owner.ErrorCount == before ? new HeaderOperations(request, response) : null;
    }

    private static HeaderOperation Operation(FieldReader? reader, bool isRequest, List<string> authoritySet)
    {
        if (reader is null)
        {
            return HeaderOperation.None;
        }
        var set = Writes(reader, "set", isRequest, authoritySet);
        var add = Writes(reader, "add", isRequest, authoritySet);
        var remove = reader.StringList("remove");
        foreach (var name in remove)
        {
            if (IstioRules.HeaderToChange(name) is { } problem)
            {
                reader.Error("remove", problem);
            }
        }
        reader.Finish();
        return new HeaderOperation(set, add, remove);
    }

    private static List<KeyValuePair<string, string>> Writes(FieldReader reader, string key, bool isRequest, List<string> authoritySet)
    {
        var result = new List<KeyValuePair<string, string>>();
        foreach (var (name, value) in reader.StringMap(key).OrderBy(h => h.Key, StringComparer.Ordinal))
        {
            var problem = (isRequest ? IstioRules.RequestHeaderToWrite(name) : IstioRules.HeaderToChange(name)) ?? IstioRules.HeaderValue(value);
            if (problem is not null)
            {
                reader.ErrorAt($"{reader.Path}.{key}.{name}", problem);
                continue;
            }
            if (isRequest && IstioRules.IsAuthorityHeader(name))
            {
                authoritySet.Add(value);
            }
            result.Add(new(name, value));
        }
        return result;
    }

    public static IReadOnlyList<HttpMirror> Mirrors(FieldReader http)
    {
        var result = new List<HttpMirror>();
        var before = http.ErrorCount;
        var mirror = http.Map("mirror");
        double? percentage = null;
        if (http.Map("mirrorPercentage") is { } mirrorPercentage)
        {
            percentage = mirrorPercentage.Double("value") ?? 0;
            mirrorPercentage.Finish();
            if (percentage is < 0 or > 100)
            {
                http.Error("mirrorPercentage", $"{percentage} must be between 0 and 100");
            }
        }
        if (http.Int("mirrorPercent") is { } legacy)
        {
            if (legacy is < 0 or > 100)
            {
                http.Error("mirrorPercent", $"{legacy} must be between 0 and 100");
            }
            http.Warning("mirrorPercent", "mirrorPercent is deprecated; use mirrorPercentage: {value: ...}");
            // Istio's precedence: mirrorPercentage wins over the deprecated field.
            percentage ??= legacy;
        }
        if (mirror is not null)
        {
            var destination = Destination(mirror);
            if (destination is { } d && http.ErrorCount == before)
            {
                result.Add(new HttpMirror(d.Host, d.Subset, d.Port, percentage));
            }
        }
        else if (percentage is not null)
        {
            http.Warning(http.Has("mirrorPercentage") ? "mirrorPercentage" : "mirrorPercent", "there is no mirror, so this percentage has no effect (mirrors take their own percentage)");
        }
        foreach (var entry in http.MapList("mirrors"))
        {
            var destinationReader = entry.Map("destination", required: true);
            var destination = destinationReader is null ? null : Destination(destinationReader);
            var percent = Percentage100(entry);
            entry.Finish();
            if (destination is { } d && percent.Valid)
            {
                result.Add(new HttpMirror(d.Host, d.Subset, d.Port, percent.Value));
            }
        }
        if (http.Has("mirror") && http.Has("mirrors"))
        {
            http.Error("mirrors", "give only one of mirror or mirrors");
        }
        return result;
    }

    /// <summary>A mirror's percentage: 0 to 100 (Istio checks only the bounds here), default 100.</summary>
    private static (bool Valid, double? Value) Percentage100(FieldReader entry)
    {
        if (entry.Map("percentage") is not { } percentage)
        {
            return (true, null);
        }
        var value = percentage.Double("value") ?? 0;
        percentage.Finish();
        if (value is < 0 or > 100)
        {
            entry.Error("percentage", $"{value} must be between 0 and 100");
            return (false, null);
        }
        return (true, value);
    }

    /// <summary>Istio's <c>Destination</c> (host, subset, port) with its rules; null and an error when invalid.</summary>
    public static (string Host, string? Subset, int? Port)? Destination(FieldReader destination)
    {
        var before = destination.ErrorCount;
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
            var problem = host == "*" ? "'*' is not a destination; name one service host" : IstioRules.WildcardDomain(host);
            if (problem is not null)
            {
                destination.Error("host", problem);
            }
        }
        if (subset is not null && !IstioRules.IsDns1123Label(subset))
        {
            destination.Error("subset", subset.Length == 0 ? "a subset name cannot be empty" : $"'{subset}' is not a valid subset name (a DNS label: letters, digits and '-')");
        }
        return host is not null && destination.ErrorCount == before ? (host, subset, port) : null;
    }

    public static CorsPolicy? Cors(FieldReader http)
    {
        if (http.Map("corsPolicy") is not { } cors)
        {
            return null;
        }
        var before = http.ErrorCount;
        var origins = new List<StringMatch>();
        foreach (var origin in cors.MapList("allowOrigins"))
        {
            if (StringMatchParser.Parse(origin, StringMatchRules.NonEmpty, out var empty) is { } match)
            {
                origins.Add(match);
            }
            else if (empty)
            {
                origin.Error("an allowed origin needs a non-empty exact, prefix or regex");
            }
        }
        var legacyOrigins = cors.StringList("allowOrigin");
        if (cors.Has("allowOrigin"))
        {
            // Istio's rule: the deprecated list counts only when allowOrigins is absent.
            cors.Warning("allowOrigin", cors.Has("allowOrigins") ? "allowOrigin is deprecated and ignored when allowOrigins is given" : "allowOrigin is deprecated; use allowOrigins with exact matches");
            if (!cors.Has("allowOrigins"))
            {
                origins.AddRange(legacyOrigins.Select(o => new StringMatch(StringMatch.Exact, o)));
            }
        }
        var methods = cors.StringList("allowMethods");
        foreach (var method in methods.Where(m => !IstioRules.CorsMethods.Contains(m)))
        {
            cors.Error("allowMethods", $"'{method}' is not an HTTP method Istio allows here (GET, HEAD, POST, PUT, PATCH, DELETE, CONNECT, OPTIONS, TRACE or *)");
        }
        var allowHeaders = cors.StringList("allowHeaders");
        var exposeHeaders = cors.StringList("exposeHeaders");
        foreach (var (key, list) in new[] { ("allowHeaders", allowHeaders), ("exposeHeaders", exposeHeaders) })
        {
            foreach (var name in list)
            {
                if (IstioRules.CorsHeaderName(name) is { } problem)
                {
                    cors.Error(key, problem);
                }
            }
        }
        var maxAge = cors.IstioDuration("maxAge");
        if (maxAge is { } age && age.Ticks % TimeSpan.TicksPerSecond != 0)
        {
            cors.Error("maxAge", "maxAge is sent in whole seconds; round it to seconds");
        }
        var credentials = cors.Bool("allowCredentials");
        var unmatched = cors.String("unmatchedPreflights");
        if (unmatched is not (null or "UNSPECIFIED" or "FORWARD" or "IGNORE"))
        {
            cors.Error("unmatchedPreflights", $"'{unmatched}' must be FORWARD or IGNORE");
        }
        cors.Finish();
        return http.ErrorCount == before ? new CorsPolicy(origins, methods, allowHeaders, exposeHeaders, maxAge, credentials, unmatched != "IGNORE") : null;
    }

    private static string? NullIfEmpty(string? value) => string.IsNullOrEmpty(value) ? null : value;
}
