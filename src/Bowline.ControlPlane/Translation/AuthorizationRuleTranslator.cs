using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Config.Parsing;
using Envoy.Config.Rbac.V3;
using Envoy.Type.Matcher.V3;
using static Bowline.ControlPlane.Translation.AuthorizationMatchers;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// One AuthorizationPolicy rule as one Envoy RBAC <c>Policy</c>, the way Istio's authz model builds it
/// (pilot/pkg/security/authz/model/model.go and generator.go): a permission per <c>to</c> (an <c>and_rules</c> of its
/// fields and of the <c>when</c> conditions on the destination), a principal per <c>from</c> (an <c>and_ids</c> of its
/// fields and of the other <c>when</c> conditions); within a field, an <c>or</c> of the values, and the not* values under
/// one <c>not</c>.
/// </summary>
/// <remarks>
/// Two differences from Istio, both so a rule never admits more than it says. In an ALLOW policy a negated match on
/// the peer's identity (notPrincipals, notNamespaces, notServiceAccounts, notTrustDomains, and the notValues of the
/// source.* conditions) also requires that the peer has one: Envoy's <c>not_id</c> of an <c>authenticated</c> matches
/// a plaintext request, which Istio lets through such a rule under PERMISSIVE. In DENY and AUDIT policies Bowline keeps
/// Istio's form, so a plaintext request does match the negated identity and is denied (Istio's advice: DENY with
/// negative matches). And <c>destination.port</c> and <c>ports</c> name the workload's ports, which the sidecar may
/// accept on other ports in explicit mode: <paramref name="destinationPort"/> maps them.
/// </remarks>
/// <param name="destinationPort">The permission that a connection arrived for a workload port.</param>
/// <param name="forTcp">For the network RBAC filter of a TCP port: request attributes cannot be matched there.</param>
internal sealed class AuthorizationRuleTranslator(AuthorizationPolicy policy, string trustDomain, Func<int, Permission> destinationPort, bool forTcp = false)
{
    private const string HostKey = ":authority";
    private const string MethodKey = ":method";
    private const string PathKey = "path";

    private static readonly HashSet<string> PermissionKeys = new(StringComparer.Ordinal) { "destination.ip", "destination.port", "connection.sni" };

    private readonly bool _negativeIdentityNeedsMtls = policy.Action == AuthorizationAction.Allow;

    /// <summary>Istio's policy for a policy without rules: it matches nothing (so an ALLOW policy without rules denies everything).</summary>
    public static Policy MatchNever() => new()
    {
        Permissions = { Not(AnyPermission()) },
        Principals = { Not(AnyPrincipal()) },
    };

    /// <summary>
    /// The rule's policy. Null only for TCP, when an ALLOW rule needs a request attribute (Istio's checkError: the
    /// rule is dropped, admitting less); in DENY and AUDIT rules those conditions are left out instead (matching more).
    /// </summary>
    public Policy? Translate(AuthorizationRule rule)
    {
        var principalConditions = new List<Item>();
        var permissionConditions = new List<Item>();
        foreach (var when in rule.When)
        {
            var item = new Item(when.Key, when.Values, when.NotValues);
            (IsPermission(when.Key) ? permissionConditions : principalConditions).Add(item);
        }
        // One item list per to and per from (none: a single empty one), used for the TCP check and the translation alike.
        var toItems = rule.To.Count == 0 ? [[]] : rule.To.Select(to => new List<Item>
        {
            new(HostKey, to.Hosts, to.NotHosts),
            new(MethodKey, to.Methods, to.NotMethods),
            new(PathKey, to.Paths, to.NotPaths),
            new("destination.port", Text(to.Ports), Text(to.NotPorts)),
        }).ToList();
        var fromItems = rule.From.Count == 0 ? [[]] : rule.From.Select(from => new List<Item>
        {
            new("source.principal", from.Principals, from.NotPrincipals),
            new("request.auth.principal", from.RequestPrincipals, from.NotRequestPrincipals),
            new("source.serviceAccount", from.ServiceAccounts, from.NotServiceAccounts),
            new("source.trustDomain", from.TrustDomains, from.NotTrustDomains),
            new("source.namespace", from.Namespaces, from.NotNamespaces),
            new("remote.ip", from.RemoteIpBlocks, from.NotRemoteIpBlocks),
            new("source.ip", from.IpBlocks, from.NotIpBlocks),
        }).ToList();
        var all = toItems.SelectMany(i => i).Concat(fromItems.SelectMany(i => i)).Concat(principalConditions).Concat(permissionConditions);
        if (forTcp && policy.Action == AuthorizationAction.Allow && all.Any(i => IsHttpOnly(i.Key) && (i.Values.Count > 0 || i.NotValues.Count > 0)))
        {
            return null;
        }

        var result = new Policy();
        foreach (var items in toItems)
        {
            var rules = items.Concat(permissionConditions).Where(i => !(forTcp && IsHttpOnly(i.Key))).SelectMany(Permissions).ToList();
            result.Permissions.Add(And(rules.Count == 0 ? [AnyPermission()] : rules));
        }
        foreach (var items in fromItems)
        {
            var ids = items.Concat(principalConditions).Where(i => !(forTcp && IsHttpOnly(i.Key))).SelectMany(Principals).ToList();
            result.Principals.Add(And(ids.Count == 0 ? [AnyPrincipal()] : ids));
        }
        return result;
    }

    /// <summary>
    /// Attributes a connection does not have: Istio's generators refuse the request ones for TCP ("... is HTTP only").
    /// <c>experimental.envoy.filters.*</c> Istio allows there, matched against connection metadata that network filters
    /// (MySQL's, Redis') write; Bowline's proxy has none of those filters, so it is treated as a request attribute and
    /// fails closed the same way (an ALLOW rule admits nothing, a DENY rule loses it and covers more).
    /// </summary>
    private static bool IsHttpOnly(string key) =>
        key is HostKey or MethodKey or PathKey || key.StartsWith("request.", StringComparison.Ordinal) || key.StartsWith(AuthorizationValues.EnvoyFilters, StringComparison.Ordinal);

    /// <summary>Whether a <c>when</c> key is about the destination (a permission) rather than the source (a principal).</summary>
    public static bool IsPermission(string key) => PermissionKeys.Contains(key) || key.StartsWith(AuthorizationValues.EnvoyFilters, StringComparison.Ordinal);

    private IEnumerable<Permission> Permissions(Item item)
    {
        if (item.Key.StartsWith(AuthorizationValues.EnvoyFilters, StringComparison.Ordinal))
        {
            if (item.Values.Count > 0)
            {
                yield return EnvoyFilterMetadata(item.Key, item.Values);
            }
            if (item.NotValues.Count > 0)
            {
                yield return Not(EnvoyFilterMetadata(item.Key, item.NotValues));
            }
            yield break;
        }
        if (item.Values.Count > 0)
        {
            yield return Or(item.Values.Select(v => Permission(item.Key, v)));
        }
        if (item.NotValues.Count > 0)
        {
            yield return Not(Or(item.NotValues.Select(v => Permission(item.Key, v))));
        }
    }

    private Permission Permission(string key, string value)
    {
        switch (key)
        {
            case HostKey:
                // Istio's HostMatcher: case-insensitive, and the port (if the client sent one) is part of what is matched.
                return new Permission { Header = Header(HostKey, value, ignoreCase: true) };
            case MethodKey:
                return new Permission { Header = Header(MethodKey, value) };
            case PathKey:
                return new Permission { UrlPath = new PathMatcher { Path = String(value) } };
            case "destination.port":
                return destinationPort(int.Parse(value, System.Globalization.CultureInfo.InvariantCulture));
            case "destination.ip":
                return new Permission { DestinationIp = Cidr(value) };
            case "connection.sni":
                return new Permission { RequestedServerName = String(value) };
            default:
                throw new InvalidOperationException($"{policy.Meta}: {key} is not a permission attribute; the parser should have refused it");
        }
    }

    /// <summary>Istio's envoyFilterGenerator: <c>experimental.envoy.filters.a.b[c]</c> is key c of filter envoy.filters.a.b's metadata; a value <c>[v]</c> matches a list holding v.</summary>
    private static Permission EnvoyFilterMetadata(string key, IReadOnlyList<string> values)
    {
        AuthorizationValues.Key(key, out var names);
        var matchers = values.Select(v => v.StartsWith('[') && v.EndsWith(']')
            ? new ValueMatcher { ListMatch = new ListMatcher { OneOf = new ValueMatcher { StringMatch = String(v.Trim('[', ']')) } } }
            : new ValueMatcher { StringMatch = String(v) }).ToList();
        return new Permission { Metadata = new MetadataMatcher { Filter = names[0], Path = { Segment(names[1]) }, Value = Or(matchers) } };
    }

    private IEnumerable<Principal> Principals(Item item)
    {
        if (item.Key.StartsWith("request.auth.", StringComparison.Ordinal))
        {
            if (item.Values.Count > 0)
            {
                yield return JwtPrincipal(item.Key, item.Values);
            }
            if (item.NotValues.Count > 0)
            {
                yield return Not(JwtPrincipal(item.Key, item.NotValues));
            }
            yield break;
        }
        var values = item.Key == "source.principal" ? WithMeshTrustDomain(item.Values) : item.Values;
        var notValues = item.Key == "source.principal" ? WithMeshTrustDomain(item.NotValues) : item.NotValues;
        if (values.Count > 0)
        {
            yield return Or(values.Select(v => Principal(item.Key, v)));
        }
        if (notValues.Count > 0)
        {
            if (_negativeIdentityNeedsMtls && AuthorizationValues.IdentityKeys.Contains(item.Key))
            {
                yield return AnyIdentity();
            }
            yield return Not(Or(notValues.Select(v => Principal(item.Key, v))));
        }
    }

    private Principal Principal(string key, string value)
    {
        switch (key)
        {
            case "source.principal":
                return Authenticated(String(value, "spiffe://"));
            case "source.namespace":
                return Authenticated(Regex($".*/ns/{string.Join(".*", value.Split('*').Select(QuoteMeta))}/.*"));
            case "source.serviceAccount":
                var (ns, sa) = value.Contains('/', StringComparison.Ordinal) ? (value.Split('/')[0], value.Split('/')[1]) : (policy.Meta.Namespace, value);
                return Authenticated(Regex($"spiffe://.+/ns/{QuoteMeta(ns)}/(.+/|)sa/{QuoteMeta(sa)}(/.+)?"));
            case "source.trustDomain":
                return Authenticated(value == "*" ? new StringMatcher { Prefix = "spiffe://" }
                    : !value.Contains('*', StringComparison.Ordinal) ? new StringMatcher { Prefix = $"spiffe://{value}/" }
                    : Regex($"spiffe://{string.Join("[^/]*", value.Split('*', 2).Select(QuoteMeta))}/.*"));
            case "source.ip":
                return new Principal { DirectRemoteIp = Cidr(value) };
            case "remote.ip":
                return new Principal { RemoteIp = Cidr(value) };
            default:
                AuthorizationValues.Key(key, out var header);
                return new Principal { Header = Header(header[0], value) };
        }
    }

    /// <summary>The request's verified JWT (jwt_authn's metadata): Istio's request principal, audience, presenter and claim generators.</summary>
    private static Principal JwtPrincipal(string key, IReadOnlyList<string> values)
    {
        switch (key)
        {
            case "request.auth.principal":
                var alternatives = values.Select(RequestPrincipal).ToList();
                return alternatives.Count == 1 ? alternatives[0] : Or(alternatives);
            case "request.auth.audiences":
                return new Principal { Metadata = JwtClaimList(["aud"], values) };
            case "request.auth.presenter":
                return new Principal { Metadata = JwtClaimList(["azp"], values) };
            default:
                AuthorizationValues.Key(key, out var claims);
                return new Principal { Metadata = JwtClaimList(claims, values) };
        }
    }

    /// <summary><c>iss/sub</c> (split at the last '/', since an issuer is often a URL) as a match on both claims; a wildcard applies to the side it is on.</summary>
    private static Principal RequestPrincipal(string value)
    {
        var slash = value.LastIndexOf('/');
        var (iss, sub) = slash >= 0 ? (value[..slash], value[(slash + 1)..]) : (value, "");
        StringMatcher matchIss, matchSub;
        if (value == "*")
        {
            (matchIss, matchSub) = (Regex(".+"), Regex(".+"));
        }
        else if (value.StartsWith('*'))
        {
            matchIss = slash < 0 || iss == "*" ? Regex(".+") : new StringMatcher { Suffix = iss[1..] };
            matchSub = slash < 0 ? new StringMatcher { Suffix = value[1..] } : new StringMatcher { Exact = sub };
        }
        else if (value.EndsWith('*'))
        {
            matchIss = slash < 0 ? new StringMatcher { Prefix = value[..^1] } : new StringMatcher { Exact = iss };
            matchSub = slash < 0 || sub == "*" ? Regex(".+") : new StringMatcher { Prefix = sub[..^1] };
        }
        else
        {
            (matchIss, matchSub) = (new StringMatcher { Exact = iss }, new StringMatcher { Exact = sub });
        }
        return And([new Principal { Metadata = JwtClaim("iss", matchIss) }, new Principal { Metadata = JwtClaim("sub", matchSub) }]);
    }

    /// <summary>
    /// Istio's trust-domain migration with no aliases: a principal in <c>cluster.local</c> (Istio's name for "this
    /// mesh's trust domain") means the mesh's trust domain; any other is kept as written.
    /// </summary>
    private IReadOnlyList<string> WithMeshTrustDomain(IReadOnlyList<string> principals) =>
        principals.Select(p => p.Split('/') is { Length: 5 } parts && parts[0] == MeshSecurity.DefaultTrustDomain ? string.Join('/', [trustDomain, .. parts[1..]]) : p).ToList();

    private static Envoy.Config.Core.V3.CidrRange Cidr(string value)
    {
        var (address, length) = AuthorizationValues.Cidr(value);
        return new Envoy.Config.Core.V3.CidrRange { AddressPrefix = address, PrefixLen = length };
    }

    private static IReadOnlyList<string> Text(IReadOnlyList<int> ports) => ports.Select(p => p.ToString(System.Globalization.CultureInfo.InvariantCulture)).ToList();

    private sealed record Item(string Key, IReadOnlyList<string> Values, IReadOnlyList<string> NotValues);
}
