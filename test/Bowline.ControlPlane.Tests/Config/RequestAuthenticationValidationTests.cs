using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>
/// Istio's RequestAuthentication rules (ValidateRequestAuthentication, validateJwtRule and the CRD's schema), one row
/// each: rejected with an error on the named field, or accepted; and what Bowline adds so no proxy is handed config it
/// must refuse.
/// </summary>
public sealed class RequestAuthenticationValidationTests
{
    private const string Jwks = """{"keys":[{"kty":"RSA","e":"AQAB","n":"xAE7eB6qugXy"}]}""";

    public static TheoryData<string, string, string?> Specs => new()
    {
        { "empty spec", "{}", null },
        { "issuer and jwksUri", "jwtRules: [{issuer: testing@secure.istio.io, jwksUri: 'https://example.com/jwks.json'}]", null },
        { "issuer only (OIDC discovery)", "jwtRules: [{issuer: 'https://accounts.example.com'}]", null },
        { "jwksUri only", "jwtRules: [{jwksUri: 'http://example.com/jwks.json'}]", null },
        { "the CRD's jwks_uri spelling", "jwtRules: [{issuer: a, jwks_uri: 'https://example.com/jwks.json'}]", null },
        { "inline jwks", $"jwtRules: [{{issuer: a, jwks: '{Jwks}'}}]", null },
        { "neither issuer nor jwksUri", "jwtRules: [{audiences: [a]}]", "spec.jwtRules[0].issuer" },
        { "empty issuer", "jwtRules: [{issuer: '', jwksUri: 'https://example.com/jwks.json'}]", "spec.jwtRules[0].issuer" },
        { "jwks and jwksUri", $"jwtRules: [{{issuer: a, jwksUri: 'https://example.com/k', jwks: '{Jwks}'}}]", "spec.jwtRules[0].jwks" },
        { "jwksUri and jwks_uri", "jwtRules: [{issuer: a, jwksUri: 'https://example.com/k', jwks_uri: 'https://example.com/k'}]", "spec.jwtRules[0].jwks_uri" },
        { "jwksUri not a URL", "jwtRules: [{issuer: a, jwksUri: 'not a url'}]", "spec.jwtRules[0].jwksUri" },
        { "jwksUri relative", "jwtRules: [{issuer: a, jwksUri: '/jwks.json'}]", "spec.jwtRules[0].jwksUri" },
        { "jwksUri ftp", "jwtRules: [{issuer: a, jwksUri: 'ftp://example.com/jwks.json'}]", "spec.jwtRules[0].jwksUri" },
        { "jwksUri too long", $"jwtRules: [{{issuer: a, jwksUri: 'https://example.com/{new string('a', 2048)}'}}]", "spec.jwtRules[0].jwksUri" },
        { "jwks not JSON", "jwtRules: [{issuer: a, jwks: 'abc'}]", "spec.jwtRules[0].jwks" },
        { "jwks without keys", "jwtRules: [{issuer: a, jwks: '{\"kty\": \"RSA\", \"e\": \"AQAB\", \"n\": \"x\"}'}]", "spec.jwtRules[0].jwks" },
        { "jwks key without kty", "jwtRules: [{issuer: a, jwks: '{\"keys\": [{\"e\": \"AQAB\"}]}'}]", "spec.jwtRules[0].jwks" },
        { "jwks RSA key without n", "jwtRules: [{issuer: a, jwks: '{\"keys\": [{\"kty\": \"RSA\", \"e\": \"AQAB\"}]}'}]", "spec.jwtRules[0].jwks" },
        { "jwks EC key", "jwtRules: [{issuer: a, jwks: '{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"a\", \"y\": \"b\"}]}'}]", null },
        { "jwks unknown kty", "jwtRules: [{issuer: a, jwks: '{\"keys\": [{\"kty\": \"DSA\"}]}'}]", "spec.jwtRules[0].jwks" },
        { "empty audience", "jwtRules: [{issuer: a, audiences: ['']}]", "spec.jwtRules[0].audiences" },
        { "audiences", "jwtRules: [{issuer: a, audiences: [bookstore.example.com, b]}]", null },
        { "fromHeaders", "jwtRules: [{issuer: a, fromHeaders: [{name: x-jwt-assertion, prefix: 'Bearer '}]}]", null },
        { "fromHeaders without name", "jwtRules: [{issuer: a, fromHeaders: [{prefix: 'Bearer '}]}]", "spec.jwtRules[0].fromHeaders[0].name" },
        { "fromHeaders empty name", "jwtRules: [{issuer: a, fromHeaders: [{name: ''}]}]", "spec.jwtRules[0].fromHeaders[0].name" },
        { "fromHeaders name with a space", "jwtRules: [{issuer: a, fromHeaders: [{name: 'x jwt'}]}]", "spec.jwtRules[0].fromHeaders[0].name" },
        { "fromHeaders unknown field", "jwtRules: [{issuer: a, fromHeaders: [{name: x, value: y}]}]", "spec.jwtRules[0].fromHeaders[0].value" },
        { "fromParams", "jwtRules: [{issuer: a, fromParams: [my_token]}]", null },
        { "fromParams empty", "jwtRules: [{issuer: a, fromParams: ['']}]", "spec.jwtRules[0].fromParams" },
        { "fromCookies", "jwtRules: [{issuer: a, fromCookies: [session]}]", null },
        { "fromCookies empty", "jwtRules: [{issuer: a, fromCookies: ['']}]", "spec.jwtRules[0].fromCookies" },
        { "forwardOriginalToken", "jwtRules: [{issuer: a, forwardOriginalToken: true}]", null },
        { "forwardOriginalToken not a bool", "jwtRules: [{issuer: a, forwardOriginalToken: yes}]", "spec.jwtRules[0].forwardOriginalToken" },
        { "outputPayloadToHeader", "jwtRules: [{issuer: a, outputPayloadToHeader: x-jwt-payload}]", null },
        { "outputPayloadToHeader invalid", "jwtRules: [{issuer: a, outputPayloadToHeader: 'x:payload'}]", "spec.jwtRules[0].outputPayloadToHeader" },
        { "outputClaimToHeaders", "jwtRules: [{issuer: a, outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}, {header: x_nested, claim: a.b}]}]", null },
        { "outputClaimToHeaders dot in header", "jwtRules: [{issuer: a, outputClaimToHeaders: [{header: x.sub, claim: sub}]}]", "spec.jwtRules[0].outputClaimToHeaders[0].header" },
        { "outputClaimToHeaders empty claim", "jwtRules: [{issuer: a, outputClaimToHeaders: [{header: x-sub, claim: ''}]}]", "spec.jwtRules[0].outputClaimToHeaders[0].claim" },
        { "outputClaimToHeaders without header", "jwtRules: [{issuer: a, outputClaimToHeaders: [{claim: sub}]}]", "spec.jwtRules[0].outputClaimToHeaders[0].header" },
        { "timeout", "jwtRules: [{issuer: a, timeout: 10s}]", null },
        { "timeout too short", "jwtRules: [{issuer: a, timeout: 0.5ms}]", "spec.jwtRules[0].timeout" },
        { "timeout not a duration", "jwtRules: [{issuer: a, timeout: soon}]", "spec.jwtRules[0].timeout" },
        { "spaceDelimitedClaims", "jwtRules: [{issuer: a, spaceDelimitedClaims: [roles]}]", null },
        { "presence bad", "jwtRules: [{issuer: a, presence: ALWAYS}]", "spec.jwtRules[0].presence" },
        { "unknown rule field", "jwtRules: [{issuer: a, jwksUrl: 'https://example.com'}]", "spec.jwtRules[0].jwksUrl" },
        { "selector", "selector: {matchLabels: {app: httpbin}}\njwtRules: [{issuer: a}]", null },
        { "selector wildcard", "selector: {matchLabels: {app: 'http*'}}", "spec.selector.matchLabels" },
        { "selector and targetRefs", "selector: {matchLabels: {app: httpbin}}\ntargetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]", "spec.targetRefs" },
        { "targetRef and targetRefs", "targetRef: {group: gateway.networking.k8s.io, kind: Gateway, name: gw}\ntargetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]", "spec.targetRefs" },
        { "targetRefs to a gateway", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw}]", null },
        { "targetRefs to a service", "targetRefs: [{kind: Service, name: reviews}]", null },
        { "targetRefs to a deployment", "targetRefs: [{group: apps, kind: Deployment, name: reviews}]", "spec.targetRefs[0].kind" },
        { "targetRefs cross-namespace", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway, name: gw, namespace: other}]", "spec.targetRefs[0].namespace" },
        { "targetRefs without name", "targetRefs: [{group: gateway.networking.k8s.io, kind: Gateway}]", "spec.targetRefs[0].name" },
        { "unknown spec field", "jwtRule: [{issuer: a}]", "spec.jwtRule" },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_RequestAuthentication_FollowsIstiosValidation(string rule, string spec, string? errorField)
    {
        ValidationRows.Check("ra.yaml", ValidationRows.Resource("security.istio.io/v1", "RequestAuthentication", spec, "jwt-example"), rule, errorField);
    }

    [Theory]
    [InlineData("security.istio.io/v1")]
    [InlineData("security.istio.io/v1beta1")]
    public void Parse_RequestAuthentication_IsReadIntoTheModel(string apiVersion)
    {
        var parsed = ConfigFileParser.Parse("ra.yaml", $$$"""
            apiVersion: {{{apiVersion}}}
            kind: RequestAuthentication
            metadata: {name: jwt-example, namespace: foo}
            spec:
              selector:
                matchLabels: {app: httpbin}
              jwtRules:
              - issuer: testing@secure.istio.io
                jwksUri: https://raw.githubusercontent.com/istio/istio/release-1.28/security/tools/jwt/samples/jwks.json
                audiences: [app, web]
                fromHeaders: [{name: x-jwt-assertion}, {name: Authorization, prefix: "Bearer "}]
                fromParams: [my_token]
                fromCookies: [session]
                forwardOriginalToken: true
                outputPayloadToHeader: x-jwt-payload
                outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}]
                timeout: 2s
                spaceDelimitedClaims: [roles]
            """);

        Assert.Empty(parsed.Diagnostics);
        var policy = Assert.IsType<RequestAuthentication>(Assert.Single(parsed.Resources));
        Assert.Equal("httpbin", policy.Selector["app"]);
        var rule = Assert.Single(policy.JwtRules);
        Assert.Equal("testing@secure.istio.io", rule.Issuer);
        Assert.Equal(["app", "web"], rule.Audiences);
        Assert.EndsWith("/jwks.json", rule.JwksUri, StringComparison.Ordinal);
        Assert.Null(rule.Jwks);
        Assert.Equal([new JwtHeaderLocation("x-jwt-assertion", ""), new JwtHeaderLocation("Authorization", "Bearer ")], rule.FromHeaders);
        Assert.Equal(["my_token"], rule.FromParams);
        Assert.Equal(["session"], rule.FromCookies);
        Assert.True(rule.ForwardOriginalToken);
        Assert.Equal("x-jwt-payload", rule.OutputPayloadToHeader);
        Assert.Equal([new JwtClaimToHeader("x-jwt-sub", "sub")], rule.OutputClaimToHeaders);
        Assert.Equal(TimeSpan.FromSeconds(2), rule.EffectiveTimeout);
        Assert.Equal(["roles"], rule.SpaceDelimitedClaims);
    }

    [Fact]
    public void Parse_InvalidRule_ErrorNamesResourceFieldAndFix_AndOnlyThatPolicyIsRejected()
    {
        var parsed = ConfigFileParser.Parse("ra.yaml", """
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: broken, namespace: foo}
            spec:
              jwtRules:
              - issuer: testing@secure.istio.io
                jwksUri: https://example.com/jwks.json
                jwks: '{"keys": []}'
            ---
            apiVersion: security.istio.io/v1
            kind: RequestAuthentication
            metadata: {name: good, namespace: foo}
            spec:
              jwtRules: [{issuer: testing@secure.istio.io, jwksUri: "https://example.com/jwks.json"}]
            """);

        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Equal("RequestAuthentication foo/broken", error.Resource);
        Assert.Equal("spec.jwtRules[0].jwks", error.Field);
        Assert.Contains("only one of jwks and jwksUri may be set", error.Message, StringComparison.Ordinal);
        Assert.Contains("keep the inline keys or the URL, not both", error.Message, StringComparison.Ordinal);
        Assert.Equal("good", Assert.IsType<RequestAuthentication>(Assert.Single(parsed.Resources)).Meta.Name);
    }

    [Theory]
    [InlineData("jwtRules: [{issuer: a}, {issuer: a, jwksUri: 'https://example.com/k'}]", "spec.jwtRules[1].issuer", "also the issuer of jwtRules[0]")]
    [InlineData("jwtRules: [{issuer: a, jwks: '{\"keys\": [{\"kty\": \"RSA\", \"e\": \"AQAB\", \"n\": \"x\", \"d\": \"secret\"}]}'}]", "spec.jwtRules[0].jwks", "private key material")]
    [InlineData("jwtRules: [{issuer: a, presence: REQUIRED}]", "spec.jwtRules[0].presence", "is NOT enforced")]
    [InlineData("{}", "spec.jwtRules", "validates no token")]
    [InlineData("selector: {}\njwtRules: [{issuer: a}]", "spec.selector", "namespace-wide policy")]
    [InlineData("targetRefs: [{kind: Service, name: reviews}]\njwtRules: [{issuer: a}]", "spec.targetRefs[0].kind", "binds the policy to waypoints, which Bowline does not run")]
    public void Parse_AcceptedButWorthSaying_IsAWarning(string spec, string field, string message)
    {
        var parsed = ConfigFileParser.Parse("ra.yaml", ValidationRows.Resource("security.istio.io/v1", "RequestAuthentication", spec, "jwt-example"));

        Assert.Single(parsed.Resources);
        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Warning, field), (warning.Severity, warning.Field));
        Assert.Contains(message, warning.Message, StringComparison.Ordinal);
    }
}
