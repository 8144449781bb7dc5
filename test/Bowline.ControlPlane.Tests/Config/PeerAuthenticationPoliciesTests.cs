using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Istio's precedence between PeerAuthentications (ComposePeerAuthentication and the namespace modes of AuthenticationPolicies).</summary>
public sealed class PeerAuthenticationPoliciesTests
{
    private static readonly Dictionary<string, string> Reviews = new() { ["app"] = "reviews", ["version"] = "v1" };

    /// <summary>A PeerAuthentication document: <paramref name="spec"/> is YAML flow style, <paramref name="created"/> an RFC 3339 time or null.</summary>
    internal static string Policy(string ns, string name, string spec, string? created = null) =>
        $"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: {name}, namespace: {ns}{(created is null ? "" : $", creationTimestamp: '{created}'")}}}\nspec: {spec}\n";

    private static PeerAuthenticationPolicies Policies(bool meshMtls, params string[] documents) =>
        new MeshConfig(documents.SelectMany((d, i) => TestFiles.ParseValid($"pa-{i}.yaml", d)).ToList(), 1, new MeshSecurity(meshMtls, "cluster.local")).PeerAuthentication;

    private static PeerAuthenticationPolicies Policies(params string[] documents) => Policies(true, documents);

    [Fact]
    public void ForWorkload_NoPolicy_IsPermissive()
    {
        var effective = Policies().ForWorkload("default", Reviews);

        Assert.Equal(MutualTlsMode.Permissive, effective.Mode);
        Assert.Equal(MutualTlsMode.Permissive, Policies().NamespaceMode("default"));
        Assert.Null(Policies().MeshMode);
    }

    [Theory]
    [InlineData("STRICT", null, null, "Strict")]
    [InlineData("STRICT", "DISABLE", null, "Disable")]
    [InlineData("STRICT", "DISABLE", "PERMISSIVE", "Permissive")]
    [InlineData("DISABLE", null, "STRICT", "Strict")]
    [InlineData("STRICT", "UNSET", null, "Strict")]
    [InlineData("STRICT", "DISABLE", "UNSET", "Disable")]
    [InlineData("STRICT", "UNSET", "UNSET", "Strict")]
    [InlineData("UNSET", "UNSET", "UNSET", "Permissive")]
    [InlineData(null, null, "DISABLE", "Disable")]
    public void ForWorkload_NarrowestScopeWins_AndUnsetInherits(string? mesh, string? ns, string? workload, string expected)
    {
        var documents = new List<string>();
        if (mesh is not null)
        {
            documents.Add(Policy("istio-system", "mesh", $"{{mtls: {{mode: {mesh}}}}}"));
        }
        if (ns is not null)
        {
            documents.Add(Policy("default", "namespace", $"{{mtls: {{mode: {ns}}}}}"));
        }
        if (workload is not null)
        {
            documents.Add(Policy("default", "reviews", $"{{selector: {{matchLabels: {{app: reviews}}}}, mtls: {{mode: {workload}}}}}"));
        }

        Assert.Equal(Enum.Parse<MutualTlsMode>(expected), Policies([.. documents]).ForWorkload("default", Reviews).Mode);
    }

    [Fact]
    public void ForWorkload_PortLevelOverridesAndUnsetPortInheritsTheWorkloadMode()
    {
        var policies = Policies(
            Policy("istio-system", "mesh", "{mtls: {mode: STRICT}}"),
            Policy("default", "reviews", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: PERMISSIVE}, portLevelMtls: {'9080': {mode: DISABLE}, '9090': {mode: UNSET}, '9091': {mode: STRICT}}}"));

        var effective = policies.ForWorkload("default", Reviews);

        Assert.Equal(MutualTlsMode.Permissive, effective.Mode);
        Assert.Equal(MutualTlsMode.Disable, effective.ModeFor(9080));
        Assert.Equal(MutualTlsMode.Permissive, effective.ModeFor(9090));
        Assert.Equal(MutualTlsMode.Strict, effective.ModeFor(9091));
        Assert.Equal(MutualTlsMode.Permissive, effective.ModeFor(8080));
    }

    [Fact]
    public void ForWorkload_PortLevelUnsetWithAnUnsetWorkloadMode_InheritsTheNamespaceMode()
    {
        var policies = Policies(
            Policy("default", "namespace", "{mtls: {mode: STRICT}}"),
            Policy("default", "reviews", "{selector: {matchLabels: {app: reviews}}, portLevelMtls: {'9080': {}}}"));

        Assert.Equal(MutualTlsMode.Strict, policies.ForWorkload("default", Reviews).ModeFor(9080));
    }

    [Fact]
    public void ForWorkload_OldestWinsAmongWorkloadPolicies_AndTheOthersAreShadowed()
    {
        var policies = Policies(
            Policy("default", "a-new", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: DISABLE}}", "2024-06-01T00:00:00Z"),
            Policy("default", "z-old", "{selector: {matchLabels: {version: v1}}, mtls: {mode: STRICT}}", "2024-01-01T00:00:00Z"));

        var effective = policies.ForWorkload("default", Reviews);

        Assert.Equal(MutualTlsMode.Strict, effective.Mode);
        Assert.Equal("z-old", effective.Workload!.Meta.Name);
        Assert.Equal(["a-new"], effective.Shadowed.Select(p => p.Meta.Name));
    }

    [Fact]
    public void ForWorkload_WithoutTimestamps_TheFirstByNameWins()
    {
        var policies = Policies(
            Policy("default", "b", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: DISABLE}}"),
            Policy("default", "a", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}"));

        Assert.Equal(MutualTlsMode.Strict, policies.ForWorkload("default", Reviews).Mode);
    }

    [Fact]
    public void ForWorkload_OldestNamespaceWidePolicyWins_AndTheNewerIsAWarning()
    {
        var policies = Policies(
            Policy("default", "a-new", "{mtls: {mode: DISABLE}}", "2024-06-01T00:00:00Z"),
            Policy("default", "z-old", "{mtls: {mode: STRICT}}", "2024-01-01T00:00:00Z"));

        Assert.Equal(MutualTlsMode.Strict, policies.ForWorkload("default", Reviews).Mode);
        Assert.Equal(MutualTlsMode.Strict, policies.NamespaceMode("default"));
        var warning = Assert.Single(policies.Warnings);
        Assert.Contains("PeerAuthentication default/a-new (pa-0.yaml) is ignored", warning, StringComparison.Ordinal);
        Assert.Contains("PeerAuthentication default/z-old", warning, StringComparison.Ordinal);
    }

    [Fact]
    public void ForWorkload_SelectorThatDoesNotMatch_OrInAnotherNamespace_DoesNotApply()
    {
        var policies = Policies(
            Policy("default", "ratings", "{selector: {matchLabels: {app: ratings}}, mtls: {mode: STRICT}}"),
            Policy("other", "reviews", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}"),
            Policy("other", "namespace", "{mtls: {mode: STRICT}}"));

        Assert.Equal(MutualTlsMode.Permissive, policies.ForWorkload("default", Reviews).Mode);
        Assert.Equal(MutualTlsMode.Strict, policies.ForWorkload("other", Reviews).Mode);
    }

    [Fact]
    public void ForWorkload_SelectorPolicyInTheRootNamespace_IsIgnoredAsInIstio()
    {
        var policies = Policies(Policy("istio-system", "reviews", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}"));

        Assert.Equal(MutualTlsMode.Permissive, policies.ForWorkload("default", Reviews).Mode);
        Assert.Equal(MutualTlsMode.Permissive, policies.ForWorkload("istio-system", Reviews).Mode);
    }

    [Fact]
    public void ForWorkload_InTheRootNamespace_TheMeshPolicyIsItsNamespacePolicy()
    {
        var policies = Policies(Policy("istio-system", "mesh", "{mtls: {mode: STRICT}}"));

        Assert.Equal(MutualTlsMode.Strict, policies.ForWorkload("istio-system", Reviews).Mode);
        Assert.Equal(MutualTlsMode.Strict, policies.NamespaceMode("istio-system"));
        Assert.Equal(MutualTlsMode.Strict, policies.NamespaceMode("default"));
    }

    [Theory]
    [InlineData(null, null, "Permissive")]
    [InlineData("UNSET", null, "Permissive")]
    [InlineData("DISABLE", null, "Disable")]
    [InlineData("DISABLE", "UNSET", "Disable")]
    [InlineData("STRICT", "DISABLE", "Disable")]
    [InlineData(null, "STRICT", "Strict")]
    public void NamespaceMode_IsTheNamespacePolicyElseTheMeshPolicyElsePermissive(string? mesh, string? ns, string expected)
    {
        var documents = new List<string>();
        if (mesh is not null)
        {
            documents.Add(Policy("istio-system", "mesh", $"{{mtls: {{mode: {mesh}}}}}"));
        }
        if (ns is not null)
        {
            documents.Add(Policy("default", "namespace", $"{{mtls: {{mode: {ns}}}}}"));
        }
        // A workload policy never changes what clients infer about the namespace.
        documents.Add(Policy("default", "reviews", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}}"));

        Assert.Equal(Enum.Parse<MutualTlsMode>(expected), Policies([.. documents]).NamespaceMode("default"));
    }

    [Fact]
    public void Warnings_StrictWithMeshMtlsOff_SaysItIsNotEnforced()
    {
        var policies = Policies(
            false,
            Policy("default", "strict", "{mtls: {mode: STRICT}}"),
            Policy("default", "port", "{selector: {matchLabels: {app: reviews}}, portLevelMtls: {'9080': {mode: STRICT}}}"),
            Policy("default", "permissive", "{selector: {matchLabels: {app: ratings}}, mtls: {mode: PERMISSIVE}}"));

        Assert.Equal(2, policies.Warnings.Count);
        Assert.All(policies.Warnings, w => Assert.Contains("STRICT is NOT enforced: mesh mTLS is off", w, StringComparison.Ordinal));
        Assert.Contains(policies.Warnings, w => w.StartsWith("PeerAuthentication default/strict", StringComparison.Ordinal));
        Assert.Contains(policies.Warnings, w => w.StartsWith("PeerAuthentication default/port", StringComparison.Ordinal));
        Assert.Empty(Policies(true, Policy("default", "strict", "{mtls: {mode: STRICT}}")).Warnings);
    }
}
