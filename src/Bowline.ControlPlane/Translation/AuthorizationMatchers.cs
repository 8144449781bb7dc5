using System.Text;
using Envoy.Config.Rbac.V3;
using Envoy.Config.Route.V3;
using Envoy.Type.Matcher.V3;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// The Envoy matchers Istio's authorization builder writes for Istio's strings (pilot/pkg/security/authz/matcher and
/// model/permission.go, principal.go): <c>*</c> alone is presence (<c>.+</c>), a leading <c>*</c> a suffix match, a
/// trailing one a prefix match, anything else exact; JWT claims are read from jwt_authn's dynamic metadata.
/// </summary>
internal static class AuthorizationMatchers
{
    public const string JwtAuthnFilter = "envoy.filters.http.jwt_authn";

    /// <summary>Where jwt_authn puts a verified token's claims (Istio's <c>payload_in_metadata</c>).</summary>
    public const string JwtPayload = "payload";

    public static StringMatcher Regex(string regex) => new() { SafeRegex = new RegexMatcher { Regex = regex } };

    /// <summary>Istio's StringMatcherWithPrefix: the value as a matcher, <paramref name="prefix"/> put in front of what it matches.</summary>
    public static StringMatcher String(string value, string prefix = "") => value switch
    {
        "*" => Regex(".+"),
        _ when value.StartsWith('*') => prefix.Length == 0 ? new StringMatcher { Suffix = value[1..] } : Regex(prefix + ".*" + QuoteMeta(value[1..])),
        _ when value.EndsWith('*') => new StringMatcher { Prefix = prefix + value[..^1] },
        _ => new StringMatcher { Exact = prefix + value },
    };

    /// <summary>Istio's HeaderMatcher (or HostMatcher, case-insensitive): <c>*</c> is presence, else a string match.</summary>
    public static HeaderMatcher Header(string name, string value, bool ignoreCase = false)
    {
        if (value == "*")
        {
            return new HeaderMatcher { Name = name, PresentMatch = true };
        }
        var match = value.StartsWith('*') ? new StringMatcher { Suffix = value[1..] }
            : value.EndsWith('*') ? new StringMatcher { Prefix = value[..^1] }
            : new StringMatcher { Exact = value };
        match.IgnoreCase = ignoreCase;
        return new HeaderMatcher { Name = name, StringMatch = match };
    }

    /// <summary>A claim of the verified JWT, as a string: <c>[payload, claim]</c> in jwt_authn's metadata.</summary>
    public static MetadataMatcher JwtClaim(string claim, StringMatcher value) => new()
    {
        Filter = JwtAuthnFilter,
        Path = { Segment(JwtPayload), Segment(claim) },
        Value = new ValueMatcher { StringMatch = value },
    };

    /// <summary>
    /// A claim (possibly nested) that is a string or a list of strings, one of <paramref name="values"/>: Istio's
    /// MetadataListValueMatcher with its extended JWT form, <c>or_match</c> of a list match and the plain value.
    /// </summary>
    public static MetadataMatcher JwtClaimList(IReadOnlyList<string> claims, IReadOnlyList<string> values)
    {
        var value = AnyString(values);
        var matcher = new MetadataMatcher
        {
            Filter = JwtAuthnFilter,
            Value = new ValueMatcher { OrMatch = new OrMatcher { ValueMatchers = { new ValueMatcher { ListMatch = new ListMatcher { OneOf = value } }, value.Clone() } } },
        };
        matcher.Path.Add(Segment(JwtPayload));
        matcher.Path.AddRange(claims.Select(Segment));
        return matcher;
    }

    /// <summary>Istio's StringOrMatcher: one string match, or an <c>or_match</c> of several.</summary>
    public static ValueMatcher AnyString(IReadOnlyList<string> values) =>
        Or(values.Select(v => new ValueMatcher { StringMatch = String(v) }).ToList());

    public static ValueMatcher Or(IReadOnlyList<ValueMatcher> matchers) =>
        matchers.Count == 1 ? matchers[0] : new ValueMatcher { OrMatch = new OrMatcher { ValueMatchers = { matchers } } };

    public static MetadataMatcher.Types.PathSegment Segment(string key) => new() { Key = key };

    public static Permission AnyPermission() => new() { Any = true };

    public static Permission And(IEnumerable<Permission> rules) => new() { AndRules = new Permission.Types.Set { Rules = { rules } } };

    public static Permission Or(IEnumerable<Permission> rules) => new() { OrRules = new Permission.Types.Set { Rules = { rules } } };

    public static Permission Not(Permission rule) => new() { NotRule = rule };

    public static Principal AnyPrincipal() => new() { Any = true };

    public static Principal And(IEnumerable<Principal> ids) => new() { AndIds = new Principal.Types.Set { Ids = { ids } } };

    public static Principal Or(IEnumerable<Principal> ids) => new() { OrIds = new Principal.Types.Set { Ids = { ids } } };

    public static Principal Not(Principal id) => new() { NotId = id };

    /// <summary>The peer's mTLS identity (the URI SAN of its client certificate) matched by <paramref name="name"/>.</summary>
    public static Principal Authenticated(StringMatcher name) => new() { Authenticated = new Principal.Types.Authenticated { PrincipalName = name } };

    /// <summary>Any mTLS identity: what Istio writes for <c>principals: ["*"]</c>; it never matches a plaintext connection.</summary>
    public static Principal AnyIdentity() => Authenticated(Regex(".+"));

    /// <summary>Go's regexp.QuoteMeta, which Istio applies, so the regexes Bowline writes are the ones Istio writes.</summary>
    public static string QuoteMeta(string value)
    {
        var result = new StringBuilder(value.Length);
        foreach (var c in value)
        {
            if (@"\.+*?()|[]{}^$".Contains(c, StringComparison.Ordinal))
            {
                result.Append('\\');
            }
            result.Append(c);
        }
        return result.ToString();
    }
}
