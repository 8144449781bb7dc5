using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// The value rules of Istio's AuthorizationPolicy validation (pkg/config/security: ValidateAttribute, ValidateIPs,
/// ValidatePorts, CheckServiceAccount, CheckTrustDomainValues, CheckValidPathTemplate) plus the few Bowline adds where
/// Istio would accept a value that can never match. Each method returns null when the value is valid, else the reason.
/// </summary>
internal static partial class AuthorizationValues
{
    /// <summary>Istio's <c>when</c> keys whose values are Istio strings; keys with a <c>[name]</c> are matched by prefix.</summary>
    public const string RequestHeaders = "request.headers";
    public const string RequestClaims = "request.auth.claims";
    public const string EnvoyFilters = "experimental.envoy.filters.";

    /// <summary>The attributes that need the peer's mTLS identity: they can only match a request on a mutual TLS connection.</summary>
    public static readonly IReadOnlySet<string> IdentityKeys = new HashSet<string>(StringComparer.Ordinal)
    {
        "source.principal", "source.namespace", "source.serviceAccount", "source.trustDomain",
    };

    private static readonly HashSet<string> PlainKeys = new(StringComparer.Ordinal)
    {
        "source.ip", "remote.ip", "source.namespace", "source.serviceAccount", "source.trustDomain", "source.principal",
        "request.auth.principal", "request.auth.audiences", "request.auth.presenter", "destination.ip", "destination.port", "connection.sni",
    };

    [GeneratedRegex("^[a-zA-Z0-9-._~%!$&'()+,;:@=]+$")]
    private static partial Regex PathLiteralRegex();

    /// <summary>
    /// Istio's wildcard rule (CheckWildcardValues): at most one <c>*</c>, alone or first or last. Istio takes a
    /// <c>*</c> anywhere else literally, which is almost always a mistake, so Bowline applies the rule to every string
    /// field that supports wildcards (Istio applies it to trust domains only).
    /// </summary>
    public static string? Wildcard(string value)
    {
        var stars = value.Count(c => c == '*');
        if (stars > 1)
        {
            return $"'{value}' has {stars} wildcards; at most one '*' is allowed, alone, first (suffix match) or last (prefix match)";
        }
        return stars == 1 && value != "*" && !value.StartsWith('*') && !value.EndsWith('*')
            ? $"'{value}': a wildcard is only allowed alone, at the start (suffix match) or at the end (prefix match); Istio would match the '*' literally"
            : null;
    }

    /// <summary>A <c>principals</c> value: a SPIFFE ID without its scheme, which translation adds.</summary>
    public static string? Principal(string value) =>
        value.StartsWith("spiffe://", StringComparison.OrdinalIgnoreCase)
            ? $"'{value}': write principals without the spiffe:// scheme ('{value["spiffe://".Length..]}'); Istio adds it, so this value could never match"
            : Wildcard(value);

    /// <summary>An IP address or CIDR range, as Go's netip parses them (no leading zeros, no shorthand).</summary>
    public static string? IpOrCidr(string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        var address = slash < 0 ? value : value[..slash];
        if (!TryParseIp(address, out var ip))
        {
            return slash < 0 ? $"'{value}' is not an IP address (10.1.2.3 or 2001:db8::1) or a CIDR range (10.1.0.0/16)" : $"'{value}' is not a CIDR range: '{address}' is not an IP address";
        }
        if (slash < 0)
        {
            return ip.AddressFamily == AddressFamily.InterNetworkV6 && value.Contains('%', StringComparison.Ordinal) ? $"'{value}': an IPv6 zone cannot be matched; remove it" : null;
        }
        var bits = value[(slash + 1)..];
        var max = ip.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        return bits.Length is 0 or > 3 || bits.Any(c => c is < '0' or > '9') || (bits.Length > 1 && bits[0] == '0') || int.Parse(bits, CultureInfo.InvariantCulture) > max
            ? $"'{value}' is not a CIDR range: the prefix length must be 0 to {max}"
            : null;
    }

    /// <summary>The address and prefix length of a valid <see cref="IpOrCidr"/> value, as Istio's AddrStrToCidrRange writes them.</summary>
    public static (string Address, uint PrefixLength) Cidr(string value)
    {
        var slash = value.IndexOf('/', StringComparison.Ordinal);
        TryParseIp(slash < 0 ? value : value[..slash], out var ip);
        var full = ip.AddressFamily == AddressFamily.InterNetwork ? 32u : 128u;
        return (ip.ToString(), slash < 0 ? full : uint.Parse(value[(slash + 1)..], CultureInfo.InvariantCulture));
    }

    private static bool TryParseIp(string text, out IPAddress ip)
    {
        ip = IPAddress.None;
        if (text.Contains(':', StringComparison.Ordinal))
        {
            return IPAddress.TryParse(text, out ip!) && ip.AddressFamily == AddressFamily.InterNetworkV6;
        }
        // IPAddress.TryParse takes "10", "10.1" and hex octets; Go's netip (and so Istio) takes exactly four decimal octets.
        var parts = text.Split('.');
        if (parts.Length != 4 || parts.Any(p => p.Length is 0 or > 3 || p.Any(c => c is < '0' or > '9') || (p.Length > 1 && p[0] == '0') || int.Parse(p, CultureInfo.InvariantCulture) > 255))
        {
            return false;
        }
        ip = IPAddress.Parse(text);
        return true;
    }

    /// <summary>
    /// A port. Istio's ValidatePorts also takes 0, which no connection has, so a rule with it can never match; Bowline
    /// refuses it.
    /// </summary>
    public static string? Port(string value, out int port)
    {
        port = 0;
        if (value.Length is 0 or > 5 || value.Any(c => c is < '0' or > '9') || (port = int.Parse(value, CultureInfo.InvariantCulture)) is < 1 or > 65535)
        {
            return $"'{value}' is not a port; a port is a number from 1 to 65535";
        }
        return null;
    }

    /// <summary>Istio's CheckServiceAccount: <c>name</c> or <c>namespace/name</c>, no wildcard, at most 320 characters.</summary>
    public static string? ServiceAccount(string value)
    {
        if (value.Contains('*', StringComparison.Ordinal))
        {
            return $"'{value}': wildcards are not allowed in service accounts";
        }
        if (value.Length > 320)
        {
            return $"'{value[..20]}...' is longer than 320 characters";
        }
        var parts = value.Split('/');
        return parts.Length > 2 || parts.Any(p => p.Length == 0)
            ? $"'{value}' is not 'serviceAccount' or 'namespace/serviceAccount'"
            : null;
    }

    /// <summary>Istio's CheckTrustDomainValues: a wildcard value without '/'.</summary>
    public static string? TrustDomain(string value) =>
        value.Contains('/', StringComparison.Ordinal) ? $"'{value}': a trust domain must not contain '/'" : Wildcard(value);

    /// <summary>Whether a path uses Istio's path templates (<c>{*}</c>, <c>{**}</c>).</summary>
    public static bool IsPathTemplate(string value) => value.Contains("{*}", StringComparison.Ordinal) || value.Contains("{**}", StringComparison.Ordinal);

    /// <summary>A <c>paths</c> value: Istio's CheckValidPathTemplate, then Bowline's refusal of templates its proxy cannot match yet.</summary>
    public static string? Path(string value)
    {
        var template = IsPathTemplate(value);
        var anyFound = false;
        foreach (var glob in value.Trim('/').Split('/'))
        {
            if (glob == "{*}" && !anyFound)
            {
                continue;
            }
            if (glob == "{**}" && !anyFound)
            {
                anyFound = true;
                continue;
            }
            if (glob is "{*}" or "{**}")
            {
                return $"'{value}': {{**}} must be the last operator of a path template";
            }
            if (glob.Contains('{', StringComparison.Ordinal) || glob.Contains('}', StringComparison.Ordinal))
            {
                return $"'{value}' has '{{' or '}}' outside a path template ({{*}} or {{**}} as a whole segment)";
            }
            if (template && !PathLiteralRegex().IsMatch(glob))
            {
                return $"'{value}': segment '{glob}' of a path template has characters a template does not allow";
            }
        }
        if (template)
        {
            // Istio translates a template into Envoy's uri_template matcher, which Bowline's proxy does not have yet.
            return $"'{value}': path templates ({{*}}, {{**}}) are not supported by Bowline yet; write the path with a prefix or suffix wildcard ('/api/*') instead";
        }
        return Wildcard(value);
    }

    /// <summary>
    /// A <c>when</c> key (Istio's ValidateAttribute), and the names inside its brackets: <c>request.headers[name]</c>,
    /// <c>request.auth.claims[a][b]</c>, <c>experimental.envoy.filters.&lt;filter&gt;[key]</c>.
    /// </summary>
    public static string? Key(string key, out IReadOnlyList<string> names)
    {
        names = [];
        if (PlainKeys.Contains(key))
        {
            return null;
        }
        if (key.StartsWith(RequestHeaders, StringComparison.Ordinal))
        {
            var rest = key[RequestHeaders.Length..];
            return Bracketed(rest) is { } name && !name.Contains('[', StringComparison.Ordinal) && !name.Contains(']', StringComparison.Ordinal)
                ? Set(out names, [name])
                : $"'{key}' must be request.headers[<header name>], such as request.headers[User-Agent]";
        }
        if (key.StartsWith(RequestClaims, StringComparison.Ordinal))
        {
            return NestedBrackets(key[RequestClaims.Length..]) is { } claims
                ? Set(out names, claims)
                : $"'{key}' must be request.auth.claims[<claim>], or request.auth.claims[<claim>][<nested claim>]... for a nested claim";
        }
        if (key.StartsWith(EnvoyFilters, StringComparison.Ordinal))
        {
            var open = key.IndexOf('[', StringComparison.Ordinal);
            return open > EnvoyFilters.Length && key.EndsWith(']') && open < key.Length - 2
                ? Set(out names, [key["experimental.".Length..open], key[(open + 1)..^1]])
                : $"'{key}' must be experimental.envoy.filters.<filter name>[<metadata key>]";
        }
        return key switch
        {
            "destination.namespace" => $"attribute {key} is replaced by the policy's metadata.namespace; remove the condition",
            _ when key.StartsWith("destination.labels", StringComparison.Ordinal) => $"attribute {key} is replaced by the workload selector; use selector.matchLabels",
            "destination.name" or "destination.user" => $"attribute {key} was only supported in Istio's v1alpha1 RBAC; select the workload with selector.matchLabels",
            _ => $"unknown attribute '{key}'; use one of request.headers[<name>], source.ip, remote.ip, source.namespace, source.principal, source.serviceAccount, source.trustDomain, request.auth.principal, request.auth.audiences, request.auth.presenter, request.auth.claims[<name>], destination.ip, destination.port, connection.sni, experimental.envoy.filters.<filter>[<key>]",
        };
    }

    /// <summary>A <c>when</c> value for <paramref name="key"/> (already valid).</summary>
    public static string? ConditionValue(string key, string value) => key switch
    {
        "source.ip" or "remote.ip" or "destination.ip" => IpOrCidr(value),
        "destination.port" => Port(value, out _),
        "source.serviceAccount" => ServiceAccount(value),
        "source.trustDomain" => TrustDomain(value),
        "source.principal" => Principal(value),
        // Istio turns every '*' of a namespace into ".*"; the experimental metadata keys take Istio strings or [string].
        "source.namespace" => null,
        _ when key.StartsWith(EnvoyFilters, StringComparison.Ordinal) => Wildcard(value.StartsWith('[') && value.EndsWith(']') ? value[1..^1] : value),
        _ => Wildcard(value),
    };

    private static string? Set(out IReadOnlyList<string> names, IReadOnlyList<string> value)
    {
        names = value;
        return null;
    }

    private static string? Bracketed(string text) =>
        text.Length > 2 && text[0] == '[' && text[^1] == ']' ? text[1..^1] : null;

    /// <summary>Istio's extractNameInNestedBrackets: <c>[a][b]</c> is a, b; anything else bracketed once is its inside (<c>[a.b]</c> is the claim a.b).</summary>
    private static IReadOnlyList<string>? NestedBrackets(string text)
    {
        var names = new List<string>();
        var i = 0;
        while (i < text.Length)
        {
            var end = text[i] == '[' ? text.IndexOfAny(['[', ']'], i + 1) : -1;
            if (end < 0 || text[end] != ']' || end == i + 1)
            {
                return Bracketed(text) is { } whole ? [whole] : null;
            }
            names.Add(text[(i + 1)..end]);
            i = end + 1;
        }
        return names.Count > 0 ? names : null;
    }
}
