namespace Bowline.ControlPlane.Config;

/// <summary>What an AuthorizationPolicy does with the requests its rules match (<c>spec.action</c>).</summary>
internal enum AuthorizationAction
{
    /// <summary>Istio's default: once any ALLOW policy selects a workload, only requests some ALLOW rule matches get in.</summary>
    Allow,

    /// <summary>Requests a rule matches are refused (403), whatever any ALLOW policy says.</summary>
    Deny,

    /// <summary>Requests a rule matches are marked for the access log; nothing is refused.</summary>
    Audit,

    /// <summary>Delegation to an external authorizer (<c>provider.name</c>), which Bowline does not have: it fails closed.</summary>
    Custom,
}

/// <summary>
/// An Istio <c>security.istio.io/v1 AuthorizationPolicy</c>, validated with Istio's rules. Which workloads it covers is
/// <see cref="AuthorizationPolicies"/>; its translation into Envoy's RBAC filter is <c>Translation/AuthorizationBuilder</c>.
/// </summary>
/// <param name="Selector"><c>selector.matchLabels</c>; empty when absent or empty (the policy covers its namespace, or the mesh from the root namespace).</param>
/// <param name="Rules"><c>rules</c>; empty when absent: an ALLOW policy then matches nothing (so it denies every request), a DENY policy is invalid.</param>
/// <param name="Provider"><c>provider.name</c>, only with <see cref="AuthorizationAction.Custom"/>.</param>
/// <param name="DryRun">The <c>istio.io/dry-run: "true"</c> annotation: evaluated and counted as Envoy's shadow rules, never enforced.</param>
internal sealed record AuthorizationPolicy(
    ResourceMeta Meta,
    IReadOnlyDictionary<string, string> Selector,
    AuthorizationAction Action,
    string? Provider,
    IReadOnlyList<AuthorizationRule> Rules,
    bool DryRun) : MeshResource(Meta);

/// <summary>
/// One rule: it matches a request when some <paramref name="From"/> source matches (or there is none), some
/// <paramref name="To"/> operation matches (or there is none), and every <paramref name="When"/> condition holds.
/// </summary>
/// <param name="From"><c>from[].source</c>; empty when absent.</param>
/// <param name="To"><c>to[].operation</c>; empty when absent.</param>
internal sealed record AuthorizationRule(
    IReadOnlyList<AuthorizationSource> From,
    IReadOnlyList<AuthorizationOperation> To,
    IReadOnlyList<AuthorizationCondition> When);

/// <summary>
/// <c>from[].source</c>: every field given must match; within a field any value. Values are Istio's strings, with
/// <c>*</c> alone, as a prefix or as a suffix. Principals are SPIFFE IDs without the scheme (<c>cluster.local/ns/default/sa/x</c>).
/// </summary>
internal sealed record AuthorizationSource(
    IReadOnlyList<string> Principals,
    IReadOnlyList<string> NotPrincipals,
    IReadOnlyList<string> RequestPrincipals,
    IReadOnlyList<string> NotRequestPrincipals,
    IReadOnlyList<string> Namespaces,
    IReadOnlyList<string> NotNamespaces,
    IReadOnlyList<string> ServiceAccounts,
    IReadOnlyList<string> NotServiceAccounts,
    IReadOnlyList<string> TrustDomains,
    IReadOnlyList<string> NotTrustDomains,
    IReadOnlyList<string> IpBlocks,
    IReadOnlyList<string> NotIpBlocks,
    IReadOnlyList<string> RemoteIpBlocks,
    IReadOnlyList<string> NotRemoteIpBlocks);

/// <summary><c>to[].operation</c>: every field given must match; within a field any value. Ports are the workload's (container) ports.</summary>
internal sealed record AuthorizationOperation(
    IReadOnlyList<string> Hosts,
    IReadOnlyList<string> NotHosts,
    IReadOnlyList<int> Ports,
    IReadOnlyList<int> NotPorts,
    IReadOnlyList<string> Methods,
    IReadOnlyList<string> NotMethods,
    IReadOnlyList<string> Paths,
    IReadOnlyList<string> NotPaths);

/// <summary><c>when[]</c>: the attribute <paramref name="Key"/> (<c>request.auth.claims[groups]</c>) is one of <paramref name="Values"/> and none of <paramref name="NotValues"/>.</summary>
internal sealed record AuthorizationCondition(string Key, IReadOnlyList<string> Values, IReadOnlyList<string> NotValues);
