namespace Bowline.ControlPlane.Config;

/// <summary>The AuthorizationPolicies that apply to one workload, by action, each list oldest first.</summary>
internal sealed record WorkloadAuthorization(
    IReadOnlyList<AuthorizationPolicy> Custom,
    IReadOnlyList<AuthorizationPolicy> Audit,
    IReadOnlyList<AuthorizationPolicy> Deny,
    IReadOnlyList<AuthorizationPolicy> Allow)
{
    public bool IsEmpty => Custom.Count + Audit.Count + Deny.Count + Allow.Count == 0;

    public IEnumerable<AuthorizationPolicy> All => Custom.Concat(Audit).Concat(Deny).Concat(Allow);
}

/// <summary>
/// Every AuthorizationPolicy of one config generation, scoped as Istio scopes them for a sidecar
/// (pilot/pkg/model/authorization.go ListAuthorizationPolicies and policyattachment.go): a policy in the root
/// namespace (<see cref="MeshSecurity.RootNamespace"/>) covers workloads of every namespace, any other only its own
/// namespace's; without a selector (or with an empty one) it covers every workload of that scope, with one only those
/// whose labels include all of the selector's. Unlike PeerAuthentication, policies do not override each other: every
/// policy that covers a workload applies. Immutable; built once per generation.
/// </summary>
internal sealed class AuthorizationPolicies
{
    private readonly ILookup<string, AuthorizationPolicy> _byNamespace;

    public AuthorizationPolicies(IEnumerable<AuthorizationPolicy> policies)
    {
        // Istio's order (sortConfigByCreationTime): oldest first, then by name and namespace. Only the order of the
        // RBAC policies within a filter follows from it, which Envoy evaluates as a set.
        All = policies
            .OrderBy(p => p.Meta.CreationTimestamp ?? DateTimeOffset.MinValue)
            .ThenBy(p => p.Meta.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Meta.Namespace, StringComparer.Ordinal)
            .ToList();
        _byNamespace = All.ToLookup(p => p.Meta.Namespace, StringComparer.Ordinal);
    }

    public IReadOnlyList<AuthorizationPolicy> All { get; }

    /// <summary>The policies covering the workload in <paramref name="ns"/> with <paramref name="labels"/>.</summary>
    public WorkloadAuthorization ForWorkload(string ns, IReadOnlyDictionary<string, string> labels)
    {
        var scopes = ns == MeshSecurity.RootNamespace ? [ns] : new[] { MeshSecurity.RootNamespace, ns };
        var selected = scopes.SelectMany(s => _byNamespace[s]).Where(p => p.Selector.All(s => labels.TryGetValue(s.Key, out var v) && v == s.Value)).ToList();
        return new WorkloadAuthorization(
            selected.Where(p => p.Action == AuthorizationAction.Custom).ToList(),
            selected.Where(p => p.Action == AuthorizationAction.Audit).ToList(),
            selected.Where(p => p.Action == AuthorizationAction.Deny).ToList(),
            selected.Where(p => p.Action == AuthorizationAction.Allow).ToList());
    }
}
