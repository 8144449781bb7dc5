using System.Buffers.Text;
using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using Bowline.EndToEnd.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Istio's "JWT authentication" task, with its YAML: a RequestAuthentication for issuer
/// <c>testing@secure.istio.io</c> whose <c>jwksUri</c> the control plane fetches (here from a local server holding a
/// key made for the test), then an AuthorizationPolicy requiring a request principal. Real sidecars, real mTLS, real
/// signed tokens.
/// </summary>
public sealed class JwtTaskTests : IAsyncLifetime
{
    private const string Issuer = "testing@secure.istio.io";
    private const string Host = "http://httpbin:8000";
    private const string Cluster = "outbound|8000||httpbin.default.svc.cluster.local";
    private readonly RSA _key = RSA.Create(2048);
    private readonly RSA _stranger = RSA.Create(2048);
    private WebApplication? _jwks;
    private string _jwksUri = "";

    public async Task InitializeAsync()
    {
        var p = _key.ExportParameters(false);
        var jwks = $$"""{"keys":[{"kty":"RSA","kid":"test-1","alg":"RS256","n":"{{Base64Url.EncodeToString(p.Modulus)}}","e":"{{Base64Url.EncodeToString(p.Exponent)}}"}]}""";
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        _jwks = builder.Build();
        _jwks.MapGet("/jwks.json", () => Results.Text(jwks, "application/json"));
        await _jwks.StartAsync(Timeouts.Token(Timeouts.Short));
        _jwksUri = new Uri(new Uri(_jwks.Urls.First()), "/jwks.json").ToString();
    }

    public async Task DisposeAsync()
    {
        await _jwks!.DisposeAsync();
        _key.Dispose();
        _stranger.Dispose();
    }

    private string RequestAuthentication => $$"""
        apiVersion: security.istio.io/v1
        kind: RequestAuthentication
        metadata: {name: jwt-example, namespace: default}
        spec:
          selector:
            matchLabels: {app: httpbin}
          jwtRules:
          - issuer: "{{Issuer}}"
            jwksUri: "{{_jwksUri}}"
        """;

    private const string RequireJwt = """
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: require-jwt, namespace: default}
        spec:
          selector:
            matchLabels: {app: httpbin}
          action: ALLOW
          rules:
          - from:
            - source:
                requestPrincipals: ["testing@secure.istio.io/testing@secure.istio.io"]
        """;

    private string Token(RSA key, string issuer = Issuer, TimeSpan? expiresIn = null, string kid = "test-1")
    {
        var now = DateTimeOffset.UtcNow;
        var payload = $$"""{"iss":"{{issuer}}","sub":"{{issuer}}","iat":{{now.ToUnixTimeSeconds()}},"exp":{{(now + (expiresIn ?? TimeSpan.FromHours(1))).ToUnixTimeSeconds()}},"groups":["group1"]}""";
        var handler = new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false };
        return handler.CreateToken(payload, new SigningCredentials(new RsaSecurityKey(key) { KeyId = kid }, SecurityAlgorithms.RsaSha256));
    }

    private static async Task<HttpStatusCode> GetAsync(HttpClient http, string? token)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, Host + "/headers");
        if (token is not null)
        {
            request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        }
        using var response = await http.SendAsync(request).Within(Timeouts.Short);
        return response.StatusCode;
    }

    [Fact]
    public async Task JwtTask_InvalidTokensAre401_MissingIsAllowedUntilRequireJwt_ThenOnlyAValidTokenGetsIn()
    {
        var backend = await TestBackend.StartAsync("v1");
        await using var _ = backend;
        await using var mesh = await MeshHarness.StartMtlsAsync(("httpbin.yaml", MeshYaml.Service("httpbin", 8000)), ("jwt.yaml", RequestAuthentication));
        var server = await mesh.StartSidecarAsync("httpbin-v1", new Dictionary<string, string> { ["app"] = "httpbin", ["version"] = "v1" }, [("http", 8000, backend.Port)]);
        var client = await mesh.StartSidecarAsync("sleep", new Dictionary<string, string> { ["app"] = "sleep" }, [], Cluster);
        using var http = client.Client();
        await server.Host.Snapshots.WaitUntilAsync(s => HasFilter(s, "envoy.filters.http.jwt_authn"), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);

        // "Verify that a request with an invalid JWT is denied" (401), and one without a JWT is allowed (no policy yet).
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(http, "invalidToken"));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(http, null));
        Assert.Equal(HttpStatusCode.OK, await GetAsync(http, Token(_key)));
        // Tokens the issuer's keys did not sign, or that expired, or from another issuer: 401 too.
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(http, Token(_stranger)));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(http, Token(_key, expiresIn: TimeSpan.FromHours(-1))));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(http, Token(_key, issuer: "someone-else")));

        // "Require a valid token": the AuthorizationPolicy with requestPrincipals.
        var generation = mesh.ControlPlane.Mesh.Current.Config.Generation;
        await mesh.WriteConfigAsync("require-jwt.yaml", RequireJwt);
        await server.Host.Snapshots.WaitUntilAsync(s => HasFilter(s, "envoy.filters.http.rbac"), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        Assert.True(mesh.ControlPlane.Mesh.Current.Config.Generation > generation);

        Assert.Equal(HttpStatusCode.OK, await GetAsync(http, Token(_key)));
        Assert.Equal(HttpStatusCode.Forbidden, await GetAsync(http, null));
        Assert.Equal(HttpStatusCode.Unauthorized, await GetAsync(http, Token(_stranger)));
        // Only the requests answered 200 reached httpbin: two before the policy, one after.
        Assert.Equal(3, backend.Received.Count(r => r.Path == "/headers"));
    }

    private static bool HasFilter(Bowline.Proxy.Configuration.ProxySnapshot snapshot, string filter) =>
        snapshot.Listeners.Values.Any(l => l.Chains.Any(c => c.Filters.Any(f => f.Filter.Name == filter)));
}
