using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>
/// Istio's PeerAuthentication rules (ValidatePeerAuthentication, the CRD's schema, and the cases of Istio's
/// testdata/crds/peerauth-*.yaml), one row each: rejected with an error on the named field, or accepted.
/// </summary>
public sealed class PeerAuthenticationValidationTests
{
    public static TheoryData<string, string, string?> Specs => new()
    {
        { "empty spec", "{}", null },
        { "mesh or namespace strict", "mtls: {mode: STRICT}", null },
        { "every mode", "mtls: {mode: UNSET}", null },
        { "disable", "mtls: {mode: DISABLE}", null },
        { "permissive", "mtls: {mode: PERMISSIVE}", null },
        { "mtls without mode", "mtls: {}", null },
        { "bad mode", "mtls: {mode: BLAH}", "spec.mtls.mode" },
        { "lower-case mode", "mtls: {mode: strict}", "spec.mtls.mode" },
        { "unknown mtls field", "mtls: {mode: STRICT, strict: true}", "spec.mtls.strict" },
        { "unknown spec field", "targetRef: {kind: Service, name: reviews}", "spec.targetRef" },
        { "full", "selector: {matchLabels: {foo: bar}}\nmtls: {mode: PERMISSIVE}\nportLevelMtls: {'80': {mode: STRICT}}", null },
        { "port key unquoted", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {8080: {mode: DISABLE}}", null },
        { "port without mode inherits", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'80': {}}", null },
        { "port level without selector", "portLevelMtls: {'80': {mode: STRICT}}", "spec.portLevelMtls" },
        { "port level with an empty selector", "selector: {}\nportLevelMtls: {'80': {mode: STRICT}}", "spec.portLevelMtls" },
        { "port level with empty labels", "selector: {matchLabels: {}}\nportLevelMtls: {'80': {mode: STRICT}}", "spec.portLevelMtls" },
        { "empty port level", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {}", "spec.portLevelMtls" },
        { "port not a number", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {acd: {mode: STRICT}}", "spec.portLevelMtls.acd" },
        { "port zero", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'0': {mode: STRICT}}", "spec.portLevelMtls.0" },
        { "port negative", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'-1': {mode: STRICT}}", "spec.portLevelMtls.-1" },
        { "port too high", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'42949672': {mode: STRICT}}", "spec.portLevelMtls.42949672" },
        { "port 65535", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'65535': {mode: STRICT}}", null },
        { "port bad mode", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'80': {mode: ON}}", "spec.portLevelMtls.80.mode" },
        { "port not a mapping", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'80': STRICT}", "spec.portLevelMtls.80" },
        { "port unknown field", "selector: {matchLabels: {foo: bar}}\nportLevelMtls: {'80': {mode: STRICT, port: 80}}", "spec.portLevelMtls.80.port" },
        { "selector wildcard key", "selector: {matchLabels: {'app*': bar}}", "spec.selector.matchLabels" },
        { "selector wildcard value", "selector: {matchLabels: {app: '*'}}", "spec.selector.matchLabels" },
        { "selector empty key", "selector: {matchLabels: {'': bar}}", "spec.selector.matchLabels" },
        { "selector value too long", $"selector: {{matchLabels: {{app: {new string('a', 64)}}}}}", "spec.selector.matchLabels" },
        { "selector value of 63", $"selector: {{matchLabels: {{app: {new string('a', 63)}}}}}", null },
        { "selector unknown field", "selector: {labels: {app: reviews}}", "spec.selector.labels" },
        { "weird but valid: empty selector", "selector: {}", null },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_PeerAuthentication_FollowsIstiosValidation(string rule, string spec, string? errorField)
    {
        ValidationRows.Check("pa.yaml", ValidationRows.Resource("security.istio.io/v1", "PeerAuthentication", spec, "policy"), rule, errorField);
    }

    [Theory]
    [InlineData("security.istio.io/v1")]
    [InlineData("security.istio.io/v1beta1")]
    public void Parse_PeerAuthentication_IsReadIntoTheModel(string apiVersion)
    {
        var parsed = ConfigFileParser.Parse("pa.yaml", $$$"""
            apiVersion: {{{apiVersion}}}
            kind: PeerAuthentication
            metadata: {name: reviews, namespace: bookinfo, creationTimestamp: "2024-05-01T12:00:00Z"}
            spec:
              selector: {matchLabels: {app: reviews}}
              mtls: {mode: STRICT}
              portLevelMtls:
                "9080": {mode: PERMISSIVE}
                "9090": {}
            """);

        Assert.Empty(parsed.Diagnostics);
        var policy = Assert.IsType<PeerAuthentication>(Assert.Single(parsed.Resources));
        Assert.Equal(("bookinfo", "reviews"), (policy.Meta.Namespace, policy.Selector["app"]));
        Assert.Equal(MutualTlsMode.Strict, policy.Mode);
        Assert.Equal([(9080, MutualTlsMode.Permissive), (9090, MutualTlsMode.Unset)], policy.PortLevel.OrderBy(p => p.Key).Select(p => (p.Key, p.Value)));
        Assert.Equal(new DateTimeOffset(2024, 5, 1, 12, 0, 0, TimeSpan.Zero), policy.Meta.CreationTimestamp);
    }

    [Theory]
    [InlineData("istio-system", "selector: {matchLabels: {app: reviews}}", "root namespace istio-system has no effect")]
    [InlineData("default", "selector: {}", "namespace-wide policy")]
    [InlineData("default", "selector: {matchLabels: {}}", "namespace-wide policy")]
    public void Parse_SelectorWithoutEffect_IsAWarningOnTheSelector(string ns, string spec, string message)
    {
        var parsed = ConfigFileParser.Parse("pa.yaml", $"apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {{name: policy, namespace: {ns}}}\nspec:\n" + ValidationRows.Indent(spec, "  "));

        Assert.False(parsed.HasErrors, string.Join("\n", parsed.Diagnostics));
        Assert.Single(parsed.Resources);
        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Warning, "spec.selector"), (warning.Severity, warning.Field));
        Assert.Contains(message, warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_BadCreationTimestamp_IsAWarningAndThePolicyLoads()
    {
        var parsed = ConfigFileParser.Parse("pa.yaml", "apiVersion: security.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: policy, creationTimestamp: yesterday}\nspec: {}\n");

        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Warning, "metadata.creationTimestamp"), (warning.Severity, warning.Field));
        Assert.Null(Assert.IsType<PeerAuthentication>(Assert.Single(parsed.Resources)).Meta.CreationTimestamp);
    }

    [Fact]
    public void Parse_WrongApiVersion_IsAnError()
    {
        var parsed = ConfigFileParser.Parse("pa.yaml", "apiVersion: networking.istio.io/v1\nkind: PeerAuthentication\nmetadata: {name: policy}\nspec: {}\n");

        Assert.Equal("apiVersion", Assert.Single(parsed.Diagnostics).Field);
        Assert.Empty(parsed.Resources);
    }
}
