using Bowline.ControlPlane.Security;

namespace Bowline.ControlPlane.Config;

/// <summary>One JWT rule as it applies to a workload, with the policy it came from (for messages).</summary>
/// <param name="Index">The rule's position in the policy's <c>jwtRules</c>.</param>
internal sealed record AppliedJwtRule(RequestAuthentication Policy, int Index, JwtRule Rule)
{
    public override string ToString() => $"{Policy.Meta} ({Policy.Meta.File}) jwtRules[{Index}]";
}

/// <summary>
/// Every RequestAuthentication of one config generation, scoped with Istio's rules (pilot/pkg/model/authentication.go
/// getConfigsForWorkload and policyattachment.go): a workload gets every policy of its own namespace and of the root
/// namespace whose selector its labels include (no selector: all of them), and they do not override each other: their
/// rules add up, sorted by issuer. A policy with targetRefs applies only to the Kubernetes Gateway API gateway it
/// names (a proxy labelled <c>gateway.networking.k8s.io/gateway-name</c>) in its own namespace. Immutable; built once
/// per generation.
/// </summary>
internal sealed class RequestAuthenticationPolicies
{
    /// <summary>The label Kubernetes Gateway API deployments carry, naming their Gateway.</summary>
    public const string GatewayNameLabel = "gateway.networking.k8s.io/gateway-name";

    private readonly ILookup<string, RequestAuthentication> _byNamespace;

    public RequestAuthenticationPolicies(IEnumerable<RequestAuthentication> policies)
    {
        // Istio's order within a namespace is the oldest first; files rarely carry a time, so then by name.
        All = policies
            .OrderBy(p => p.Meta.CreationTimestamp ?? DateTimeOffset.MinValue)
            .ThenBy(p => p.Meta.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Meta.Namespace, StringComparer.Ordinal)
            .ToList();
        _byNamespace = All.ToLookup(p => p.Meta.Namespace, StringComparer.Ordinal);
        JwksSources = All
            .SelectMany(p => p.JwtRules)
            .Where(r => r.NeedsFetch)
            .GroupBy(JwksSource.KeyOf, StringComparer.Ordinal)
            .Select(g => new JwksSource(g.First().Issuer, g.First().JwksUri, g.Max(r => r.EffectiveTimeout)))
            .OrderBy(s => s.Key, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Every policy, oldest first.</summary>
    public IReadOnlyList<RequestAuthentication> All { get; }

    /// <summary>Every JWKS the control plane must fetch for these policies (a jwksUri, or an issuer to discover), once each.</summary>
    public IReadOnlyList<JwksSource> JwksSources { get; }

    /// <summary>The rules that apply to the workload in <paramref name="ns"/> with <paramref name="labels"/>, sorted by issuer (Istio's order, which names the providers).</summary>
    public IReadOnlyList<AppliedJwtRule> ForWorkload(string ns, IReadOnlyDictionary<string, string> labels)
    {
        var namespaces = ns == MeshSecurity.RootNamespace ? new[] { ns } : [ns, MeshSecurity.RootNamespace];
        return namespaces
            .SelectMany(n => _byNamespace[n])
            .Where(p => Applies(p, ns, labels))
            .SelectMany(p => p.JwtRules.Select((rule, i) => new AppliedJwtRule(p, i, rule)))
            .OrderBy(r => r.Rule.Issuer, StringComparer.Ordinal)
            .ToList();
    }

    private static bool Applies(RequestAuthentication policy, string ns, IReadOnlyDictionary<string, string> labels)
    {
        if (!labels.TryGetValue(GatewayNameLabel, out var gatewayName))
        {
            // Not a Gateway API gateway: a policy with targetRefs is for something else, and the selector decides.
            return policy.TargetRefs.Count == 0 && Selects(policy.Selector, labels);
        }
        if (policy.TargetRefs.Count == 0)
        {
            // Istio's default (ENABLE_SELECTOR_BASED_K8S_GATEWAY_POLICY=true): such a gateway honours selectors too.
            return Selects(policy.Selector, labels);
        }
        return policy.Meta.Namespace == ns && policy.TargetRefs.Any(t => t is { Group: PolicyTargetRef.GatewayApiGroup, Kind: "Gateway" } && t.Name == gatewayName);
    }

    private static bool Selects(IReadOnlyDictionary<string, string> selector, IReadOnlyDictionary<string, string> labels) =>
        selector.All(s => labels.TryGetValue(s.Key, out var value) && value == s.Value);
}
