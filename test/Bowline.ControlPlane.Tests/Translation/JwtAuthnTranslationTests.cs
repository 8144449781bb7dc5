using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Security;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Security;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Microsoft.Extensions.Logging.Abstractions;
using static Bowline.ControlPlane.Tests.Config.RequestAuthenticationPoliciesTests;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// RequestAuthentication as Envoy's jwt_authn filter, field for field as Istio writes it
/// (pilot/pkg/security/authn/policy_applier.go), for Istio's JWT task (<c>jwt-example</c>, issuer
/// <c>testing@secure.istio.io</c>) with its jwksUri served by a local server the control plane fetches from.
/// </summary>
public sealed class JwtAuthnTranslationTests : IAsyncLifetime
{
    private static readonly ProxyNode Productpage = ProxyNode.From(TestNodes.ProductpageSidecar());
    private static readonly ProxyNode Ingress = ProxyNode.From(TestNodes.IngressGateway());

    private JwksServer _server = null!;
    private JwksResolver _resolver = null!;

    public async Task InitializeAsync()
    {
        _server = await JwksServer.StartAsync();
        _server.Answer("/jwks.json", JwksServer.IstioSampleJwks);
        _resolver = new JwksResolver(TimeProvider.System, NullLogger<JwksResolver>.Instance);
    }

    public async Task DisposeAsync()
    {
        _resolver.Dispose();
        await _server.DisposeAsync();
    }

    /// <summary>Istio's task policy, moved to bookinfo's productpage: <c>kubectl apply -f - &lt;&lt;EOF ... jwt-example</c>.</summary>
    private string JwtExample(string ns = "default", string selector = "app: productpage") => Policy(ns, "jwt-example", $"""
        selector:
          matchLabels: {"{"}{selector}{"}"}
        jwtRules:
        - issuer: "testing@secure.istio.io"
          jwksUri: "{_server.Url("/jwks.json")}"
        """);

    /// <summary>Bookinfo with the given policies, after the control plane fetched their JWKS (as the config loop does before publishing).</summary>
    private async Task<ServiceIndex> IndexAsync(params string[] policies)
    {
        var config = Bookinfo.Index(policies).Config;
        await _resolver.UseAsync(config.RequestAuthentication.JwksSources, TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        return new ServiceIndex(config.WithJwks(_resolver.Current, config.Generation + 1));
    }

    private static HttpConnectionManager InboundHcm(Bowline.ControlPlane.Snapshots.XdsSnapshot snapshot) =>
        Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound).FilterChains.Single().Filters.Single().TypedConfig.Unpack<HttpConnectionManager>();

    private static HttpConnectionManager GatewayHcm(Bowline.ControlPlane.Snapshots.XdsSnapshot snapshot) =>
        Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_8080").FilterChains.Single().Filters.Single().TypedConfig.Unpack<HttpConnectionManager>();

    private static string[] FilterNames(HttpConnectionManager hcm) => hcm.HttpFilters.Select(f => f.Name).ToArray();

    private static JwtAuthentication JwtConfig(HttpConnectionManager hcm) => hcm.HttpFilters.Single(f => f.Name == JwtAuthnBuilder.FilterName).TypedConfig.Unpack<JwtAuthentication>();

    private static string Escaped(string json) => System.Text.Json.JsonSerializer.Serialize(json);

    [Fact]
    public async Task Translate_IstioJwtTask_OneProviderWithFetchedKeys_MissingTokenPasses_FirstFilterOfTheInboundHcm()
    {
        var snapshot = MeshTranslator.Translate(await IndexAsync(JwtExample()), Productpage);

        var hcm = InboundHcm(snapshot);
        Assert.Equal([IstioTelemetryBuilder.MetadataExchangeFilter, JwtAuthnBuilder.FilterName, EnvoyBuilders.FaultFilter, EnvoyBuilders.CorsFilter, EnvoyBuilders.LocalRateLimitFilter, IstioTelemetryBuilder.StatsFilter, EnvoyBuilders.RouterFilter], FilterNames(hcm));
        Assert.Equal(Json<JwtAuthentication>("""
            {
              "providers": {
                "origins-0": {
                  "issuer": "testing@secure.istio.io",
                  "localJwks": {"inlineString": INLINE},
                  "payloadInMetadata": "payload",
                  "normalizePayloadInMetadata": {"spaceDelimitedClaims": ["permission", "scope"]}
                }
              },
              "rules": [{"match": {"prefix": "/"}, "requires": {"requiresAny": {"requirements": [{"providerName": "origins-0"}, {"allowMissing": {}}]}}}],
              "bypassCorsPreflight": true
            }
            """.Replace("INLINE", Escaped(JwksServer.IstioSampleJwks), StringComparison.Ordinal)), JwtConfig(hcm));
        Assert.DoesNotContain(snapshot.Warnings, w => w.Contains("RequestAuthentication", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Translate_NoPolicyForTheWorkload_NoJwtFilter()
    {
        var index = await IndexAsync(JwtExample(selector: "app: reviews"));

        Assert.DoesNotContain(JwtAuthnBuilder.FilterName, FilterNames(InboundHcm(MeshTranslator.Translate(index, Productpage))));
        Assert.DoesNotContain(JwtAuthnBuilder.FilterName, FilterNames(GatewayHcm(MeshTranslator.Translate(index, Ingress))));
        Assert.DoesNotContain(JwtAuthnBuilder.FilterName, FilterNames(InboundHcm(MeshTranslator.Translate(Bookinfo.Index(), Productpage))));
    }

    [Fact]
    public async Task Translate_IngressTaskPolicy_OnTheGatewayHcm_ClearsTheRouteCache_AndLeavesSidecarsAlone()
    {
        var index = await IndexAsync(JwtExample("istio-system", "istio: ingressgateway"));

        var hcm = GatewayHcm(MeshTranslator.Translate(index, Ingress));
        // Policy filters come right after the metadata exchange, which labels even a request they refuse.
        Assert.Equal([IstioTelemetryBuilder.MetadataExchangeFilter, JwtAuthnBuilder.FilterName], hcm.HttpFilters.Take(2).Select(f => f.Name));
        var provider = JwtConfig(hcm).Providers["origins-0"];
        Assert.True(provider.ClearRouteCache);
        Assert.Equal(JwksServer.IstioSampleJwks, provider.LocalJwks.InlineString);
        Assert.DoesNotContain(JwtAuthnBuilder.FilterName, FilterNames(InboundHcm(MeshTranslator.Translate(index, Productpage))));
    }

    [Fact]
    public async Task Translate_EveryRuleField_MapsToItsEnvoyField()
    {
        var index = await IndexAsync(Policy("default", "full", """
            jwtRules:
            - issuer: testing@secure.istio.io
              jwks: '{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}'
              audiences: [bookinfo, web]
              fromHeaders: [{name: x-jwt-assertion}, {name: Authorization, prefix: "Bearer "}]
              fromParams: [my_token]
              fromCookies: [session]
              forwardOriginalToken: true
              outputPayloadToHeader: x-jwt-payload
              outputClaimToHeaders: [{header: x-jwt-sub, claim: sub}]
              spaceDelimitedClaims: [roles, scope]
            """));

        var provider = JwtConfig(InboundHcm(MeshTranslator.Translate(index, Productpage))).Providers["origins-0"];

        Assert.Equal(Json<JwtProvider>("""
            {
              "issuer": "testing@secure.istio.io",
              "audiences": ["bookinfo", "web"],
              "localJwks": {"inlineString": "{\"keys\": [{\"kty\": \"oct\", \"k\": \"c2VjcmV0\"}]}"},
              "forward": true,
              "fromHeaders": [{"name": "x-jwt-assertion"}, {"name": "Authorization", "valuePrefix": "Bearer "}],
              "fromParams": ["my_token"],
              "fromCookies": ["session"],
              "forwardPayloadHeader": "x-jwt-payload",
              "payloadInMetadata": "payload",
              "normalizePayloadInMetadata": {"spaceDelimitedClaims": ["permission", "roles", "scope"]},
              "claimToHeaders": [{"headerName": "x-jwt-sub", "claimName": "sub"}]
            }
            """), provider);
    }

    [Fact]
    public async Task Translate_SeveralIssuersFromSeveralPolicies_ProvidersInIssuerOrder_AnyValidTokenOrEveryTokenValidOrMissing()
    {
        var index = await IndexAsync(
            JwtExample(),
            Policy("istio-system", "mesh", "jwtRules: [{issuer: accounts.example.com, jwks: '{\"keys\": []}'}]"));

        var config = JwtConfig(InboundHcm(MeshTranslator.Translate(index, Productpage)));

        Assert.Equal(["accounts.example.com", "testing@secure.istio.io"], config.Providers.OrderBy(p => p.Key, StringComparer.Ordinal).Select(p => p.Value.Issuer));
        Assert.Equal(Json<JwtAuthentication>("""
            {"rules": [{"match": {"prefix": "/"}, "requires": {"requiresAny": {"requirements": [
              {"providerName": "origins-0"},
              {"providerName": "origins-1"},
              {"requiresAll": {"requirements": [
                {"requiresAny": {"requirements": [{"providerName": "origins-0"}, {"allowMissing": {}}]}},
                {"requiresAny": {"requirements": [{"providerName": "origins-1"}, {"allowMissing": {}}]}}
              ]}}
            ]}}}]}
            """).Rules, config.Rules);
        Assert.True(config.BypassCorsPreflight);
    }

    [Fact]
    public async Task Translate_JwksNeverFetched_FailsClosedWithKeysThatVerifyNothing_AndSaysSo()
    {
        var policy = Policy("default", "jwt-example", $"selector: {{matchLabels: {{app: productpage}}}}\njwtRules: [{{issuer: testing@secure.istio.io, jwksUri: '{_server.Url("/missing.json")}'}}]");

        var snapshot = MeshTranslator.Translate(await IndexAsync(policy), Productpage);

        var provider = JwtConfig(InboundHcm(snapshot)).Providers["origins-0"];
        Assert.Equal(JwtAuthnBuilder.VerifiesNothingJwks, provider.LocalJwks.InlineString);
        Assert.Equal("testing@secure.istio.io", provider.Issuer);
        var warning = Assert.Single(snapshot.Warnings, w => w.Contains("RequestAuthentication default/jwt-example", StringComparison.Ordinal));
        Assert.Contains("jwtRules[0]: tokens of issuer testing@secure.istio.io are REJECTED (401)", warning, StringComparison.Ordinal);
        Assert.Contains("HTTP 404", warning, StringComparison.Ordinal);
        Assert.Contains(_server.Url("/missing.json"), warning, StringComparison.Ordinal);
    }

    [Fact]
    public void Translate_PolicyNotFetchedYet_StillFailsClosed()
    {
        // A generation published before any fetch (an empty JWKS snapshot) must not accept unverified tokens either.
        var index = Bookinfo.Index(JwtExample());

        var snapshot = MeshTranslator.Translate(index, Productpage);

        Assert.Equal(JwtAuthnBuilder.VerifiesNothingJwks, JwtConfig(InboundHcm(snapshot)).Providers["origins-0"].LocalJwks.InlineString);
        Assert.Contains(snapshot.Warnings, w => w.Contains("it has not been fetched yet", StringComparison.Ordinal));
    }

    [Fact]
    public void VerifiesNothingJwks_IsAValidJwksWithOnlyAPublicKey()
    {
        Assert.Empty(Bowline.ControlPlane.Config.Parsing.RequestAuthenticationParser.JwksProblems(JwtAuthnBuilder.VerifiesNothingJwks));
        using var document = System.Text.Json.JsonDocument.Parse(JwtAuthnBuilder.VerifiesNothingJwks);
        var key = Assert.Single(document.RootElement.GetProperty("keys").EnumerateArray().ToList());
        Assert.False(key.TryGetProperty("d", out _));
        var modulus = key.GetProperty("n").GetString()!.Replace('-', '+').Replace('_', '/');
        Assert.Equal(256, Convert.FromBase64String(modulus.PadRight((modulus.Length + 3) / 4 * 4, '=')).Length);
    }
}
