using System.Text.RegularExpressions;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// The value rules Istio's validation applies to networking resources (host names, header names and values, label
/// selectors, percentages, status codes), so that what Istio's webhook rejects Bowline rejects too. Each method
/// returns null when the value is valid, else the reason, written to be read after the field name.
/// </summary>
internal static partial class IstioRules
{
    /// <summary>RFC 7230's token characters: what an HTTP header name may contain.</summary>
    [GeneratedRegex("^[!#$%&'*+\\-.^_`|~A-Za-z0-9]+$")]
    private static partial Regex HeaderNameRegex();

    [GeneratedRegex("^[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?$")]
    private static partial Regex Dns1123LabelRegex();

    [GeneratedRegex("^(\\*|(\\*|\\*-)?[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)$")]
    private static partial Regex WildcardLabelRegex();

    [GeneratedRegex("^([a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?(?:\\.[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?)*/)?((?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$")]
    private static partial Regex LabelKeyRegex();

    [GeneratedRegex("^((?:[A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")]
    private static partial Regex LabelValueRegex();

    private static readonly HashSet<string> PseudoHeaders = new(StringComparer.Ordinal) { ":method", ":scheme", ":authority", ":path", ":status" };

    /// <summary>Envoy's retry conditions (x-envoy-retry-on and x-envoy-retry-grpc-on), the set Istio accepts in retryOn.</summary>
    public static readonly IReadOnlySet<string> RetryOnPolicies = new HashSet<string>(StringComparer.Ordinal)
    {
        "5xx", "gateway-error", "reset", "reset-before-request", "connect-failure", "retriable-4xx", "refused-stream",
        "retriable-status-codes", "retriable-headers", "envoy-ratelimited", "http3-post-connect-failure",
        "cancelled", "deadline-exceeded", "internal", "resource-exhausted", "unavailable",
    };

    /// <summary>gRPC status names to their codes (grpc/doc/statuscodes.md), as fault abort grpcStatus takes them.</summary>
    public static readonly IReadOnlyDictionary<string, int> GrpcStatusCodes = new Dictionary<string, int>(StringComparer.Ordinal)
    {
        ["OK"] = 0, ["CANCELLED"] = 1, ["UNKNOWN"] = 2, ["INVALID_ARGUMENT"] = 3, ["DEADLINE_EXCEEDED"] = 4, ["NOT_FOUND"] = 5,
        ["ALREADY_EXISTS"] = 6, ["PERMISSION_DENIED"] = 7, ["RESOURCE_EXHAUSTED"] = 8, ["FAILED_PRECONDITION"] = 9, ["ABORTED"] = 10,
        ["OUT_OF_RANGE"] = 11, ["UNIMPLEMENTED"] = 12, ["INTERNAL"] = 13, ["UNAVAILABLE"] = 14, ["DATA_LOSS"] = 15, ["UNAUTHENTICATED"] = 16,
    };

    /// <summary>The methods Istio allows in corsPolicy.allowMethods.</summary>
    public static readonly IReadOnlySet<string> CorsMethods = new HashSet<string>(StringComparer.Ordinal)
    {
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "CONNECT", "OPTIONS", "TRACE", "*",
    };

    /// <summary>The status codes Go's net/http names: Istio treats a number in retryOn as a status code only if it is one of them.</summary>
    public static readonly IReadOnlySet<int> KnownStatusCodes = new HashSet<int>
    {
        100, 101, 102, 103, 200, 201, 202, 203, 204, 205, 206, 207, 208, 226, 300, 301, 302, 303, 304, 305, 307, 308,
        400, 401, 402, 403, 404, 405, 406, 407, 408, 409, 410, 411, 412, 413, 414, 415, 416, 417, 418, 421, 422, 423, 424,
        425, 426, 428, 429, 431, 451, 500, 501, 502, 503, 504, 505, 506, 507, 508, 510, 511,
    };

    public static bool IsDns1123Label(string value) => value.Length <= 63 && Dns1123LabelRegex().IsMatch(value);

    /// <summary>A host as VirtualServices and DestinationRules name it: a DNS name whose first label may be a wildcard (<c>*.example.com</c>, <c>*</c>).</summary>
    public static string? WildcardDomain(string domain)
    {
        if (DomainPreconditions(domain) is { } problem)
        {
            return problem;
        }
        var parts = domain.Split('.', 2);
        if (!(parts[0].Length <= 63 && WildcardLabelRegex().IsMatch(parts[0])))
        {
            return $"'{domain}' is not a valid host name (label '{parts[0]}' is invalid); use a DNS name such as reviews or reviews.default.svc.cluster.local, optionally starting with '*.'";
        }
        return parts.Length > 1 ? Dns1123Labels(domain, parts[1]) : null;
    }

    /// <summary>A fully qualified DNS name without wildcards.</summary>
    public static string? Fqdn(string domain) => DomainPreconditions(domain) ?? Dns1123Labels(domain, domain);

    private static string? DomainPreconditions(string domain) => domain.Length switch
    {
        0 => "an empty host name is not allowed",
        > 255 => $"host name '{domain[..20]}...' is too long (at most 255 characters)",
        _ => null,
    };

    private static string? Dns1123Labels(string domain, string rest)
    {
        var labels = rest.Split('.');
        if (int.TryParse(labels[^1], out _))
        {
            return $"'{domain}' is not a valid host name: the top-level domain '{labels[^1]}' cannot be all digits";
        }
        for (var i = 0; i < labels.Length; i++)
        {
            // A trailing dot (`istio.io.`) is allowed.
            if (i == labels.Length - 1 && labels[i].Length == 0)
            {
                return null;
            }
            if (!IsDns1123Label(labels[i]))
            {
                return $"'{domain}' is not a valid host name (label '{labels[i]}' is invalid); labels are letters, digits and '-', at most 63 characters";
            }
        }
        return null;
    }

    /// <summary>A header name in a match: an HTTP token or one of the HTTP/2 pseudo-headers.</summary>
    public static string? MatchHeaderName(string name)
    {
        if (name.Length == 0)
        {
            return "a header name cannot be empty";
        }
        return PseudoHeaders.Contains(name) || HeaderNameRegex().IsMatch(name) ? null : $"'{name}' is not a valid HTTP header name";
    }

    /// <summary>Istio's JWT-claim routing form, <c>@request.auth.claims.name</c> or <c>@request.auth.claims[name]</c>.</summary>
    public static bool IsJwtClaim(string name) => name.StartsWith("@request.auth.claims.", StringComparison.Ordinal) || name.StartsWith("@request.auth.claims[", StringComparison.Ordinal);

    /// <summary>A header name in a CORS list: an HTTP token, or <c>*</c>.</summary>
    public static string? CorsHeaderName(string name) => name.Length == 0 ? "a header name cannot be empty"
        : name == "*" || HeaderNameRegex().IsMatch(name) ? null : $"'{name}' is not a valid HTTP header name";

    /// <summary>A header set or added on the request: pseudo-headers cannot be, except the authority (which becomes a host rewrite).</summary>
    public static string? RequestHeaderToWrite(string name)
    {
        if (name.Length == 0)
        {
            return "a header name cannot be empty";
        }
        return IsInternalHeader(name) && !IsAuthorityHeader(name) ? $"header '{name}' cannot be changed: names starting with ':' are pseudo-headers" : null;
    }

    /// <summary>A header removed from the request, or written or removed on the response: neither Host nor a pseudo-header.</summary>
    public static string? HeaderToChange(string name)
    {
        if (name.Length == 0)
        {
            return "a header name cannot be empty";
        }
        if (string.Equals(name, "host", StringComparison.OrdinalIgnoreCase))
        {
            return "the Host header cannot be changed here; use rewrite.authority or headers.request.set[:authority]";
        }
        return IsInternalHeader(name) ? $"header '{name}' cannot be changed: names starting with ':' are pseudo-headers" : null;
    }

    public static bool IsInternalHeader(string name) => name.StartsWith(':') || string.Equals(name, "host", StringComparison.OrdinalIgnoreCase);

    public static bool IsAuthorityHeader(string name) => string.Equals(name, ":authority", StringComparison.OrdinalIgnoreCase) || string.Equals(name, "host", StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// A header value as Envoy's header formatter reads it: no control characters, and every '%' either doubled
    /// (<c>100%%</c>) or opening a closed <c>%VARIABLE%</c> / <c>%VARIABLE(args)%</c>.
    /// </summary>
    public static string? HeaderValue(string value)
    {
        foreach (var c in value)
        {
            if ((c < 0x20 && c != '\t') || c == 0x7F)
            {
                return "a header value cannot contain control characters";
            }
        }
        for (var i = 0; i < value.Length; i++)
        {
            if (value[i] != '%')
            {
                continue;
            }
            if (i + 1 < value.Length && value[i + 1] == '%')
            {
                i++;
                continue;
            }
            // A variable: its name runs to '(' or the closing '%'; arguments run to ")%".
            var j = i + 1;
            while (j < value.Length && value[j] != '%' && value[j] != '(')
            {
                j++;
            }
            if (j < value.Length && value[j] == '(')
            {
                var close = value.IndexOf(")%", j, StringComparison.Ordinal);
                j = close < 0 ? value.Length : close + 1;
            }
            if (j >= value.Length || j == i + 1)
            {
                return $"'{value}' has an unescaped '%': write '%%' for a literal percent sign, or a complete %VARIABLE%";
            }
            i = j;
        }
        return null;
    }

    /// <summary>A label selector (subset labels, sourceLabels): Kubernetes label keys and values.</summary>
    public static string? Labels(IReadOnlyDictionary<string, string> labels)
    {
        foreach (var (key, value) in labels)
        {
            var match = LabelKeyRegex().Match(key);
            if (!match.Success || match.Groups[2].Length > 63 || match.Groups[1].Length > 254)
            {
                return $"'{key}' is not a valid label key; use letters, digits, '-', '_' and '.', optionally after a DNS prefix and '/'";
            }
            if (!LabelValueRegex().IsMatch(value) || value.Length > 63)
            {
                return $"'{value}' (label {key}) is not a valid label value; use at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit";
            }
        }
        return null;
    }

    /// <summary>Istio's Percent: 0, or between 0.0001 and 100 (Envoy's millionths cannot carry less).</summary>
    public static string? Percentage(double value) =>
        value is < 0 or > 100 || (value > 0 && value < 0.0001) ? $"{value} is neither 0 nor between 0.0001 and 100" : null;

    /// <summary>Gateway references: <c>name</c>, <c>namespace/name</c>, or the legacy <c>name.namespace</c> (accepted with a warning).</summary>
    public static string? GatewayName(string gateway, out string? warning)
    {
        warning = null;
        var parts = gateway.Split('/', 2);
        if (parts.Length != 2)
        {
            if (gateway.Contains('.', StringComparison.Ordinal))
            {
                var dotted = gateway.Split('.');
                warning = $"'{gateway}' uses the legacy gateway name form; prefer <namespace>/<name>: '{dotted[1]}/{dotted[0]}'";
            }
            return Fqdn(gateway);
        }
        if (parts[0].Length == 0 || parts[1].Length == 0)
        {
            return $"'{gateway}': the namespace and gateway name cannot be empty";
        }
        if (!IsDns1123Label(parts[0]))
        {
            return $"'{gateway}': '{parts[0]}' is not a valid namespace";
        }
        return IsDns1123Label(parts[1]) ? null : $"'{gateway}': '{parts[1]}' is not a valid gateway name";
    }

    /// <summary>Istio's exportTo: <c>.</c> (this namespace), <c>*</c> (all), namespaces; for ServiceEntries also <c>~</c> (no one).</summary>
    public static string? ExportTo(IReadOnlyList<string> exportTo, string ns, bool serviceEntry)
    {
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in exportTo)
        {
            var key = entry == "." ? ns : entry;
            if (!seen.Add(key))
            {
                return key != entry ? $"'.' and the resource's own namespace {ns} are the same entry; list it once" : $"'{entry}' is listed twice";
            }
            if (entry is not ("." or "*") && !(serviceEntry && entry == "~") && !IsDns1123Label(entry))
            {
                return $"'{entry}' is not '.', '*'{(serviceEntry ? ", '~'" : "")} or a namespace name";
            }
        }
        if (seen.Contains("*") && exportTo.Count > 1)
        {
            return "'*' (every namespace) cannot be combined with other entries";
        }
        if (seen.Contains("~") && exportTo.Count > 1)
        {
            return "'~' (no one) cannot be combined with other entries";
        }
        return null;
    }

    /// <summary>Envoy's check that a Maglev table size is prime.</summary>
    public static bool IsPrime(ulong x)
    {
        if (x is > 0 and < 4)
        {
            return true;
        }
        if ((x & 1) == 0)
        {
            return false;
        }
        var limit = (ulong)Math.Sqrt(x);
        for (ulong factor = 3; factor <= limit; factor += 2)
        {
            if (x % factor == 0)
            {
                return false;
            }
        }
        return true;
    }
}
