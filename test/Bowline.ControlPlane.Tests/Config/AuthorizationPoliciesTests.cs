using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Which AuthorizationPolicies cover a workload: Istio's root-namespace, namespace and selector scoping, every covering policy applying.</summary>
public sealed class AuthorizationPoliciesTests
{
    internal static string Policy(string ns, string name, string spec, string? created = null) =>
        $"apiVersion: security.istio.io/v1\nkind: AuthorizationPolicy\nmetadata: {{name: {name}, namespace: {ns}{(created is null ? "" : $", creationTimestamp: '{created}'")}}}\nspec: {spec}\n";

    private static AuthorizationPolicies Policies(params string[] documents) =>
        new MeshConfig(documents.SelectMany((d, i) => TestFiles.ParseValid($"authz-{i}.yaml", d)).ToList(), 1).Authorization;

    private static readonly Dictionary<string, string> Reviews = new() { ["app"] = "reviews", ["version"] = "v1" };

    private static IEnumerable<string> Names(IEnumerable<AuthorizationPolicy> policies) => policies.Select(p => $"{p.Meta.Namespace}/{p.Meta.Name}");

    [Fact]
    public void ForWorkload_MeshNamespaceAndSelectorScopes_AllApply()
    {
        var policies = Policies(
            Policy("istio-system", "mesh-deny", "{action: DENY, rules: [{from: [{source: {ipBlocks: [1.2.3.4]}}]}]}"),
            Policy("default", "namespace-allow", "{rules: [{}]}"),
            Policy("default", "reviews-allow", "{selector: {matchLabels: {app: reviews}}, rules: [{}]}"),
            Policy("default", "ratings-allow", "{selector: {matchLabels: {app: ratings}}, rules: [{}]}"),
            Policy("other", "other-allow", "{rules: [{}]}"),
            Policy("default", "audit", "{action: AUDIT, rules: [{}]}"),
            Policy("default", "custom", "{action: CUSTOM, provider: {name: opa}, rules: [{}]}"));

        var applying = policies.ForWorkload("default", Reviews);

        Assert.Equal(["istio-system/mesh-deny"], Names(applying.Deny));
        Assert.Equal(["default/namespace-allow", "default/reviews-allow"], Names(applying.Allow));
        Assert.Equal(["default/audit"], Names(applying.Audit));
        Assert.Equal(["default/custom"], Names(applying.Custom));
    }

    [Fact]
    public void ForWorkload_SelectorInTheRootNamespace_SelectsMatchingWorkloadsOfEveryNamespace()
    {
        // Unlike PeerAuthentication, Istio lists root-namespace AuthorizationPolicies for every workload and applies their selector.
        var policies = Policies(Policy("istio-system", "reviews-everywhere", "{selector: {matchLabels: {app: reviews}}, rules: [{}]}"));

        Assert.Equal(["istio-system/reviews-everywhere"], Names(policies.ForWorkload("other", Reviews).Allow));
        Assert.Empty(policies.ForWorkload("other", new Dictionary<string, string> { ["app"] = "ratings" }).Allow);
    }

    [Fact]
    public void ForWorkload_SelectorNeedsEveryLabel_AndAnEmptySelectorSelectsAll()
    {
        var policies = Policies(
            Policy("default", "v2-only", "{selector: {matchLabels: {app: reviews, version: v2}}, rules: [{}]}"),
            Policy("default", "empty-selector", "{selector: {}, rules: [{}]}"));

        Assert.Equal(["default/empty-selector"], Names(policies.ForWorkload("default", Reviews).Allow));
    }

    [Fact]
    public void ForWorkload_OldestFirstThenByName()
    {
        var policies = Policies(
            Policy("default", "b", "{rules: [{}]}"),
            Policy("default", "a", "{rules: [{}]}"),
            Policy("default", "c", "{rules: [{}]}", created: "2024-01-01T00:00:00Z"));

        Assert.Equal(["default/a", "default/b", "default/c"], Names(policies.ForWorkload("default", Reviews).Allow));
        Assert.True(policies.ForWorkload("nowhere", Reviews).IsEmpty);
    }
}
