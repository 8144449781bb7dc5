using System.Text;
using Bowline.Proxy.Filters.Http;
using Envoy.Extensions.Filters.Http.JwtAuthn.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Tests.JwtAuthn;

/// <summary>What a verified token leaves behind: metadata for RBAC, headers for the upstream, the token removed or kept.</summary>
public sealed class JwtAuthnRequestEffectsTests : JwtAuthnTestBase
{
    [Fact]
    public async Task PayloadInMetadata_IsAStructWithJsonTypes()
    {
        var filter = Create(Istio(Provider()));
        var token = Keys.Sign(Payload(aud: "[\"bookstore\",\"reviews\"]", extra: "\"groups\":[\"dev\",\"ops\"],\"admin\":true,\"level\":3.5,\"org\":{\"team\":{\"name\":\"mesh\"}}"));

        var (_, stream) = await RunAsync(filter, Bearer(token));

        var payload = MetadataPayload(stream)!;
        Assert.Equal(Issuer, payload.Fields["iss"].StringValue);
        Assert.Equal("alice", payload.Fields["sub"].StringValue);
        Assert.Equal(["bookstore", "reviews"], payload.Fields["aud"].ListValue.Values.Select(v => v.StringValue));
        Assert.Equal(Value.KindOneofCase.NumberValue, payload.Fields["exp"].KindCase);
        Assert.Equal(Now + 3600, payload.Fields["exp"].NumberValue);
        Assert.Equal(["dev", "ops"], payload.Fields["groups"].ListValue.Values.Select(v => v.StringValue));
        Assert.True(payload.Fields["admin"].BoolValue);
        Assert.Equal(3.5, payload.Fields["level"].NumberValue);
        // The paths RBAC and Istio read: [payload, iss], [payload, org, team, name].
        Assert.Equal(Issuer, stream.Metadata!.Get("envoy.filters.http.jwt_authn", ["payload", "iss"])!.StringValue);
        Assert.Equal("mesh", stream.Metadata.Get("envoy.filters.http.jwt_authn", ["payload", "org", "team", "name"])!.StringValue);
    }

    [Fact]
    public async Task HeaderInMetadata_AndSpaceDelimitedClaims()
    {
        var provider = Provider();
        provider.HeaderInMetadata = "header";
        provider.NormalizePayloadInMetadata = new JwtProvider.Types.NormalizePayload { SpaceDelimitedClaims = { "scope" } };
        var filter = Create(Istio(provider));

        var (_, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(extra: "\"scope\":\"read  write\""))));

        Assert.Equal("RS256", MetadataPayload(stream, "header")!.Fields["alg"].StringValue);
        Assert.Equal("rsa-1", MetadataPayload(stream, "header")!.Fields["kid"].StringValue);
        Assert.Equal(["read", "write"], MetadataPayload(stream)!.Fields["scope"].ListValue.Values.Select(v => v.StringValue));
    }

    [Fact]
    public async Task Forward_False_RemovesTheAuthorizationHeader_True_KeepsIt()
    {
        var keep = Provider();
        keep.Forward = true;
        var strip = Create(Istio(Provider()));
        var forward = Create(Istio(keep));
        var token = Keys.Sign(Payload());

        var (_, stripped) = await RunAsync(strip, Bearer(token));
        var (_, kept) = await RunAsync(forward, Bearer(token));

        Assert.False(stripped.Context.Request.Headers.ContainsKey("authorization"));
        Assert.Equal("Bearer " + token, kept.Context.Request.Headers.Authorization.ToString());
    }

    [Fact]
    public async Task FromParams_ReadsTheParameter_AndRemovesItUnlessForwarded()
    {
        var provider = Provider();
        provider.FromParams.Add("jwt");
        var filter = Create(Istio(provider));

        var (status, stream) = await RunAsync(filter, r => r.QueryString = new QueryString("?a=1&jwt=" + Keys.Sign(Payload()) + "&b=x%20y"));

        Assert.Equal(FilterStatus.Continue, status);
        Assert.NotNull(MetadataPayload(stream));
        Assert.Equal("?a=1&b=x%20y", stream.Context.Request.QueryString.Value);
    }

    [Fact]
    public async Task DefaultLocations_IncludeTheAccessTokenParameter()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (status, _) = await RunAsync(filter, r => r.QueryString = new QueryString("?access_token=" + Keys.Sign(Payload())));

        Assert.Equal(FilterStatus.Continue, status);
    }

    [Fact]
    public async Task FromCookies_ReadsTheCookie()
    {
        var provider = Provider();
        provider.FromCookies.Add("session");
        var filter = Create(Config(Named("p"), ("p", provider)));

        var (status, stream) = await RunAsync(filter, r => r.Headers.Cookie = "theme=dark; session=" + Keys.Sign(Payload()));
        var (_, bearer) = await RunAsync(filter, Bearer(Keys.Sign(Payload())));

        Assert.Equal(FilterStatus.Continue, status);
        Assert.NotNull(MetadataPayload(stream));
        // Explicit locations replace the defaults.
        AssertDenied(bearer, 401, "Jwt is missing", invalidToken: false);
    }

    [Fact]
    public async Task FromHeaders_WithValuePrefix()
    {
        var provider = Provider();
        provider.FromHeaders.Add(new JwtHeader { Name = "x-goog-iap-jwt-assertion" });
        provider.FromHeaders.Add(new JwtHeader { Name = "x-auth", ValuePrefix = "Token " });
        var filter = Create(Config(Named("p"), ("p", provider)));
        var token = Keys.Sign(Payload());

        var (plain, _) = await RunAsync(filter, r => r.Headers["x-goog-iap-jwt-assertion"] = token);
        var (prefixed, _) = await RunAsync(filter, r => r.Headers["x-auth"] = "Token " + token);
        var (_, wrongPrefix) = await RunAsync(filter, r => r.Headers["x-auth"] = "Bearer " + token);

        Assert.Equal(FilterStatus.Continue, plain);
        Assert.Equal(FilterStatus.Continue, prefixed);
        AssertDenied(wrongPrefix, 401, "Jwt is missing", invalidToken: false);
    }

    [Fact]
    public async Task ForwardPayloadHeader_IsTheBase64UrlPayload_PaddedOnRequest_AndClientCopiesAreDropped()
    {
        var plain = Provider();
        plain.ForwardPayloadHeader = "x-jwt-payload";
        var padded = Provider();
        padded.ForwardPayloadHeader = "x-jwt-payload";
        padded.PadForwardPayloadHeader = true;
        // A payload whose length is a multiple of 3 bytes needs no padding: pick one that does.
        var payload = Enumerable.Range(0, 3).Select(i => Payload(extra: $"\"p\":\"{new string('x', i)}\"")).First(p => Encoding.UTF8.GetByteCount(p) % 3 != 0);
        var token = Keys.Sign(payload);
        var section = token.Split('.')[1];
        Assert.NotEqual(0, section.Length % 4);

        var (_, unpaddedStream) = await RunAsync(Create(Istio(plain)), r =>
        {
            r.Headers.Authorization = "Bearer " + token;
            r.Headers["x-jwt-payload"] = "spoofed";
        });
        var (_, paddedStream) = await RunAsync(Create(Istio(padded)), Bearer(token));
        var (_, anonymous) = await RunAsync(Create(Istio(plain)), r => r.Headers["x-jwt-payload"] = "spoofed");

        Assert.Equal(section, unpaddedStream.Context.Request.Headers["x-jwt-payload"].ToString());
        Assert.Equal(payload, Encoding.UTF8.GetString(Convert.FromBase64String(paddedStream.Context.Request.Headers["x-jwt-payload"].ToString().Replace('-', '+').Replace('_', '/'))));
        Assert.EndsWith("=", paddedStream.Context.Request.Headers["x-jwt-payload"].ToString(), StringComparison.Ordinal);
        Assert.False(anonymous.Context.Request.Headers.ContainsKey("x-jwt-payload"));
    }

    [Fact]
    public async Task ClaimToHeaders_CopiesClaimsAsEnvoyFormatsThem()
    {
        var provider = Provider();
        foreach (var (header, claim) in new[] { ("x-sub", "sub"), ("x-team", "org.team.name"), ("x-level", "level"), ("x-ratio", "ratio"), ("x-admin", "admin"), ("x-groups", "groups"), ("x-none", "absent") })
        {
            provider.ClaimToHeaders.Add(new JwtClaimToHeader { HeaderName = header, ClaimName = claim });
        }
        var filter = Create(Istio(provider));
        var token = Keys.Sign(Payload(extra: "\"org\":{\"team\":{\"name\":\"mesh\"}},\"level\":3,\"ratio\":0.5,\"admin\":false,\"groups\":[\"dev\",\"ops\"]"));

        var (_, stream) = await RunAsync(filter, r =>
        {
            r.Headers.Authorization = "Bearer " + token;
            r.Headers["x-sub"] = "mallory";
        });

        var headers = stream.Context.Request.Headers;
        Assert.Equal("alice", headers["x-sub"].ToString());
        Assert.Equal("mesh", headers["x-team"].ToString());
        Assert.Equal("3", headers["x-level"].ToString());
        Assert.Equal("0.500000", headers["x-ratio"].ToString());
        Assert.Equal("false", headers["x-admin"].ToString());
        Assert.Equal("[\"dev\",\"ops\"]", Encoding.UTF8.GetString(Convert.FromBase64String(headers["x-groups"].ToString())));
        Assert.False(headers.ContainsKey("x-none"));
    }
}
