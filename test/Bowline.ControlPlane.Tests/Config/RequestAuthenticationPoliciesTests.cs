using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Which RequestAuthentication rules apply to a workload: Istio's scoping (root namespace, namespace, selector, targetRefs), rules merged by issuer.</summary>
public sealed class RequestAuthenticationPoliciesTests
{
    private static readonly Dictionary<string, string> Httpbin = new() { ["app"] = "httpbin", ["version"] = "v1" };

    internal static string Policy(string ns, string name, string spec) =>
        $"apiVersion: security.istio.io/v1\nkind: RequestAuthentication\nmetadata: {{name: {name}, namespace: {ns}}}\nspec:\n" + ValidationRows.Indent(spec, "  ");

    private static RequestAuthenticationPolicies Policies(params string[] yaml) =>
        new(yaml.SelectMany((y, i) => TestFiles.ParseValid($"ra-{i}.yaml", y)).OfType<RequestAuthentication>());

    private static string[] Issuers(IReadOnlyList<AppliedJwtRule> rules) => rules.Select(r => r.Rule.Issuer).ToArray();

    [Fact]
    public void ForWorkload_MeshNamespaceAndSelectorPolicies_AllApplyAndTheirRulesAreSortedByIssuer()
    {
        var policies = Policies(
            Policy("istio-system", "mesh", "jwtRules: [{issuer: m-mesh}]"),
            Policy("foo", "namespace", "jwtRules: [{issuer: z-namespace}, {issuer: b-namespace}]"),
            Policy("foo", "httpbin", "selector: {matchLabels: {app: httpbin}}\njwtRules: [{issuer: a-workload}]"),
            Policy("foo", "other", "selector: {matchLabels: {app: sleep}}\njwtRules: [{issuer: x-other-workload}]"),
            Policy("bar", "bar", "jwtRules: [{issuer: y-other-namespace}]"));

        var rules = policies.ForWorkload("foo", Httpbin);

        Assert.Equal(["a-workload", "b-namespace", "m-mesh", "z-namespace"], Issuers(rules));
        Assert.Equal("RequestAuthentication foo/namespace (ra-1.yaml) jwtRules[1]", rules[1].ToString());
        Assert.Equal(["m-mesh", "y-other-namespace"], Issuers(policies.ForWorkload("bar", Httpbin)));
    }

    [Fact]
    public void ForWorkload_SelectorInRootNamespace_SelectsMatchingWorkloadsOfEveryNamespace()
    {
        // Unlike PeerAuthentication, Istio attaches a root-namespace RequestAuthentication with a selector to any namespace's workload it selects.
        var policies = Policies(Policy("istio-system", "ingress", "selector: {matchLabels: {istio: ingressgateway}}\njwtRules: [{issuer: testing@secure.istio.io}]"));

        Assert.Equal(["testing@secure.istio.io"], Issuers(policies.ForWorkload("istio-system", new Dictionary<string, string> { ["istio"] = "ingressgateway" })));
        Assert.Equal(["testing@secure.istio.io"], Issuers(policies.ForWorkload("gateways", new Dictionary<string, string> { ["istio"] = "ingressgateway" })));
        Assert.Empty(policies.ForWorkload("foo", Httpbin));
    }

    [Fact]
    public void ForWorkload_TargetRefs_ApplyOnlyToTheNamedGatewayApiGatewayInTheirNamespace()
    {
        var policies = Policies(Policy("foo", "gw", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: bookinfo-gateway}]\njwtRules: [{issuer: gw}]"));
        var gateway = new Dictionary<string, string> { [RequestAuthenticationPolicies.GatewayNameLabel] = "bookinfo-gateway" };

        Assert.Equal(["gw"], Issuers(policies.ForWorkload("foo", gateway)));
        Assert.Empty(policies.ForWorkload("bar", gateway));
        Assert.Empty(policies.ForWorkload("foo", new Dictionary<string, string> { [RequestAuthenticationPolicies.GatewayNameLabel] = "other" }));
        // A sidecar ignores a policy with targetRefs altogether, as Istio does.
        Assert.Empty(policies.ForWorkload("foo", Httpbin));
    }

    [Fact]
    public void JwksSources_OnePerUriOrDiscoveredIssuer_InlineKeysNeedNone()
    {
        var policies = Policies(
            Policy("foo", "a", "jwtRules: [{issuer: a, jwksUri: 'https://example.com/jwks.json', timeout: 1s}, {issuer: 'https://accounts.example.com/'}]"),
            Policy("bar", "b", "jwtRules: [{issuer: b, jwksUri: 'https://example.com/jwks.json', timeout: 3s}, {issuer: c, jwks: '{\"keys\": []}'}]"));

        Assert.Equal(
            [("https://accounts.example.com/.well-known/openid-configuration", TimeSpan.FromSeconds(5)), ("https://example.com/jwks.json", TimeSpan.FromSeconds(3))],
            policies.JwksSources.Select(s => (s.Key, s.Timeout)));
    }
}
