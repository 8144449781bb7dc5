using Bowline.Proxy.Filters.Http;
using Envoy.Config.Core.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Tests.JwtAuthn;

/// <summary>Signature, key choice, time and claim checks of one provider, with real keys and library-signed tokens.</summary>
public sealed class JwtAuthnVerificationTests : JwtAuthnTestBase
{
    [Theory]
    [InlineData("RS256")]
    [InlineData("RS384")]
    [InlineData("RS512")]
    [InlineData("PS256")]
    [InlineData("PS384")]
    [InlineData("PS512")]
    [InlineData("ES256")]
    [InlineData("ES384")]
    [InlineData("ES512")]
    [InlineData("HS256")]
    [InlineData("HS384")]
    [InlineData("HS512")]
    public async Task SignedToken_EveryEnvoyAlgorithm_IsAllowed(string alg)
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (status, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(), alg)));

        Assert.Equal(FilterStatus.Continue, status);
        Assert.Equal("alice", MetadataPayload(stream)!.Fields["sub"].StringValue);
        Assert.Equal(1, Counter("allowed"));
    }

    [Fact]
    public async Task TokenSignedByAnotherKey_FailsVerification()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));
        var forged = JwtTestKeys.Sign(Payload(), new Microsoft.IdentityModel.Tokens.RsaSecurityKey(Keys.OtherRsa) { KeyId = "rsa-1" }, "RS256");

        var (status, stream) = await RunAsync(filter, Bearer(forged));

        Assert.Equal(FilterStatus.Stop, status);
        AssertDenied(stream, 401, "Jwt verification fails");
        Assert.Equal(1, Counter("denied"));
        Assert.Null(stream.Metadata);
    }

    [Fact]
    public async Task AlgNone_IsRefused()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));
        var unsigned = JwtTestKeys.Craft("{\"alg\":\"none\",\"typ\":\"JWT\"}", Payload(), hmacSecret: null);

        var (_, stream) = await RunAsync(filter, Bearer(unsigned));

        AssertDenied(stream, 401, "Jwt header [alg] is not supported");
    }

    [Fact]
    public async Task RsaPublicKeyUsedAsHmacSecret_AlgorithmConfusion_Fails()
    {
        // Only the RSA key in the JWKS; the attacker signs HS256 with what it knows of that public key.
        var jwks = JwtTestKeys.JwksOf(JwtTestKeys.RsaJwk(Keys.Rsa, "rsa-1"));
        var filter = Create(Config(Named("p"), ("p", Provider(jwks: jwks))));
        var publicKeyBytes = Keys.Rsa.ExportSubjectPublicKeyInfo();
        var confused = JwtTestKeys.Craft("{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", Payload(), publicKeyBytes);
        var confusedPem = JwtTestKeys.Craft("{\"alg\":\"HS256\",\"kid\":\"rsa-1\"}", Payload(), System.Text.Encoding.ASCII.GetBytes(Keys.Rsa.ExportSubjectPublicKeyInfoPem()));

        var (_, der) = await RunAsync(filter, Bearer(confused));
        var (_, pem) = await RunAsync(filter, Bearer(confusedPem));

        AssertDenied(der, 401, "Jwt verification fails");
        AssertDenied(pem, 401, "Jwt verification fails");
    }

    [Fact]
    public async Task HmacToken_OnlyVerifiesAgainstOctKeys()
    {
        // The same HMAC token is good against the oct key and fails against a JWKS of the RSA key alone.
        var token = Keys.Sign(Payload(), "HS256", kid: "shared");
        var withOct = Create(Config(Named("p"), ("p", Provider(jwks: JwtTestKeys.JwksOf(JwtTestKeys.OctJwk(Keys.Secret, "shared"))))));
        var rsaOnly = Create(Config(Named("p"), ("p", Provider(jwks: JwtTestKeys.JwksOf(JwtTestKeys.RsaJwk(Keys.Rsa, "shared"))))));

        var (ok, _) = await RunAsync(withOct, Bearer(token));
        var (_, refused) = await RunAsync(rsaOnly, Bearer(token));

        Assert.Equal(FilterStatus.Continue, ok);
        AssertDenied(refused, 401, "Jwt verification fails");
    }

    [Fact]
    public async Task UnknownKid_WhenTheJwksHasKids_Fails()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (_, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(), "RS256", kid: "rotated-away")));

        AssertDenied(stream, 401, "Jwks doesn't have key to match kid or alg from Jwt");
    }

    [Fact]
    public async Task TokenWithoutKid_TriesTheKeysOfItsFamily()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));
        var key = new Microsoft.IdentityModel.Tokens.RsaSecurityKey(Keys.Rsa);

        var (status, _) = await RunAsync(filter, Bearer(JwtTestKeys.Sign(Payload(), key, "RS256")));

        Assert.Equal(FilterStatus.Continue, status);
    }

    [Fact]
    public async Task JwkAlg_OtherThanTheTokens_IsNotUsed()
    {
        var jwks = JwtTestKeys.JwksOf(JwtTestKeys.RsaJwk(Keys.Rsa, "rsa-1", alg: "RS512"));
        var filter = Create(Config(Named("p"), ("p", Provider(jwks: jwks))));

        var (_, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(), "RS256")));

        AssertDenied(stream, 401, "Jwks doesn't have key to match kid or alg from Jwt");
    }

    [Theory]
    [InlineData(Now - 61, "Jwt is expired")]
    [InlineData(Now - 59, null)]
    public async Task Expiry_HasSixtySecondsOfSkew(long exp, string? error)
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (status, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(exp: exp))));

        if (error is null)
        {
            Assert.Equal(FilterStatus.Continue, status);
        }
        else
        {
            AssertDenied(stream, 401, error);
        }
    }

    [Fact]
    public async Task NotBefore_InTheFutureBeyondSkew_IsNotYetValid()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (_, early) = await RunAsync(filter, Bearer(Keys.Sign(Payload(nbf: Now + 61))));
        var (within, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload(nbf: Now + 59))));

        AssertDenied(early, 401, "Jwt not yet valid");
        Assert.Equal(FilterStatus.Continue, within);
    }

    [Fact]
    public async Task ClockSkewSeconds_ReplacesTheDefault_AndTimeComesFromTheTimeProvider()
    {
        var provider = Provider();
        provider.ClockSkewSeconds = 5;
        var filter = Create(Config(Named("p"), ("p", provider)));
        var token = Keys.Sign(Payload(exp: Now + 100));

        var (fresh, _) = await RunAsync(filter, Bearer(token));
        Time.Advance(TimeSpan.FromSeconds(106));
        var (_, stale) = await RunAsync(filter, Bearer(token));

        Assert.Equal(FilterStatus.Continue, fresh);
        AssertDenied(stale, 401, "Jwt is expired");
    }

    [Fact]
    public async Task WrongIssuer_IsNotConfigured()
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (_, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(issuer: "https://evil.example.com"))));

        AssertDenied(stream, 401, "Jwt issuer is not configured");
    }

    [Fact]
    public async Task ProviderWithoutIssuer_AcceptsAnyIssuer()
    {
        var filter = Create(Config(Named("p"), ("p", Provider(issuer: ""))));

        var (status, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload(issuer: "https://anyone.example.com"))));

        Assert.Equal(FilterStatus.Continue, status);
    }

    [Fact]
    public async Task WrongAudience_Is403()
    {
        var filter = Create(Config(Named("p"), ("p", Provider(audiences: "reviews"))));

        var (_, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload(aud: "[\"bookstore\",\"ratings\"]"))));

        AssertDenied(stream, 403, "Audiences in Jwt are not allowed");
    }

    [Fact]
    public async Task Audience_AnyListedPasses_ComparedWithoutSchemeAndTrailingSlash()
    {
        var filter = Create(Config(Named("p"), ("p", Provider(audiences: ["https://reviews.example.com/", "other"]))));

        var (list, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload(aud: "[\"x\",\"http://reviews.example.com\"]"))));
        var (_, none) = await RunAsync(filter, Bearer(Keys.Sign("{\"iss\":\"" + Issuer + "\"}")));

        Assert.Equal(FilterStatus.Continue, list);
        AssertDenied(none, 403, "Audiences in Jwt are not allowed");
    }

    [Fact]
    public async Task ProviderAndAudiences_OverridesTheProvidersAudiences()
    {
        var requirement = new Envoy.Extensions.Filters.Http.JwtAuthn.V3.JwtRequirement
        {
            ProviderAndAudiences = new Envoy.Extensions.Filters.Http.JwtAuthn.V3.ProviderWithAudiences { ProviderName = "p", Audiences = { "bookstore" } },
        };
        var filter = Create(Config(requirement, ("p", Provider(audiences: "reviews"))));

        var (status, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload())));

        Assert.Equal(FilterStatus.Continue, status);
    }

    [Fact]
    public async Task Subjects_RestrictWhoTheProviderMayAssert()
    {
        var provider = Provider();
        provider.Subjects = new Envoy.Type.Matcher.V3.StringMatcher { Prefix = "spiffe://example.com/" };
        var filter = Create(Config(Named("p"), ("p", provider)));

        var (_, alice) = await RunAsync(filter, Bearer(Keys.Sign(Payload(sub: "alice"))));
        var (svid, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload(sub: "spiffe://example.com/ns/default/sa/bookinfo"))));

        AssertDenied(alice, 401, "Jwt verification fails");
        Assert.Equal(FilterStatus.Continue, svid);
    }

    [Fact]
    public async Task RequireExpiration_AndMaxLifetime()
    {
        var required = Provider();
        required.RequireExpiration = true;
        var bounded = Provider();
        bounded.MaxLifetime = Duration.FromTimeSpan(TimeSpan.FromHours(1));
        var requireFilter = Create(Config(Named("p"), ("p", required)));
        var boundFilter = Create(Config(Named("p"), ("p", bounded)));

        var (_, forever) = await RunAsync(requireFilter, Bearer(Keys.Sign(Payload(exp: null))));
        var (longLived, _) = await RunAsync(requireFilter, Bearer(Keys.Sign(Payload(exp: Now + 86400 * 365))));
        var (_, tooLong) = await RunAsync(boundFilter, Bearer(Keys.Sign(Payload(exp: Now + 7200))));
        var (shortLived, _) = await RunAsync(boundFilter, Bearer(Keys.Sign(Payload(exp: Now + 1800))));

        AssertDenied(forever, 401, "Jwt verification fails");
        Assert.Equal(FilterStatus.Continue, longLived);
        AssertDenied(tooLong, 401, "Jwt verification fails");
        Assert.Equal(FilterStatus.Continue, shortLived);
    }

    [Theory]
    [InlineData("not-a-jwt", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")]
    [InlineData("a.b.c.d", "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections")]
    [InlineData("A.e30.c2ln", "Jwt header is an invalid Base64url encoded")]
    [InlineData("bm90anNvbg.e30.c2ln", "Jwt header is an invalid JSON")]
    [InlineData("e30.e30.c2ln", "Jwt header [alg] field is required and must be a string")]
    [InlineData("eyJhbGciOiJFZERTQSJ9.e30.c2ln", "Jwt header [alg] is not supported")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.bm90anNvbg.c2ln", "Jwt payload is an invalid JSON")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.eyJleHAiOiJzb29uIn0.c2ln", "Jwt payload [exp] field is not an integer")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOjF9.c2ln", "Jwt payload [aud] field is not a string or string list")]
    [InlineData("eyJhbGciOiJSUzI1NiJ9.eyJpc3MiOjF9.c2ln", "Jwt payload [iss] field is not a string")]
    public async Task MalformedTokens_GetEnvoysMessages(string token, string message)
    {
        var filter = Create(Config(Named("p"), ("p", Provider())));

        var (_, stream) = await RunAsync(filter, Bearer(token));

        AssertDenied(stream, 401, message);
    }

    [Fact]
    public async Task UnusableJwks_IsLoggedAtConfigTime_AndTokensFailWithNoValidKeys()
    {
        var loggers = new RecordingLoggerFactory();
        var filter = Create(Config(Named("p"), ("p", Provider(jwks: "{\"keys\":[{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"AA\"}]}"))), loggers);

        var (_, stream) = await RunAsync(filter, Bearer(Keys.Sign(Payload())));

        AssertDenied(stream, 401, "Jwks doesn't have any valid public key");
        Assert.Contains(loggers.Messages, m => m.Contains("kty 'OKP' is not supported", StringComparison.Ordinal));
        Assert.Contains(loggers.Messages, m => m.Contains("has no usable key", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ShortHmacKey_IsLoggedAndLeftOut()
    {
        var loggers = new RecordingLoggerFactory();
        var shortSecret = new byte[16];
        var filter = Create(Config(Named("p"), ("p", Provider(jwks: JwtTestKeys.JwksOf(JwtTestKeys.OctJwk(shortSecret, "weak"))))), loggers);

        var (_, stream) = await RunAsync(filter, Bearer(JwtTestKeys.Craft("{\"alg\":\"HS256\",\"kid\":\"weak\"}", Payload(), shortSecret)));

        AssertDenied(stream, 401, "Jwks doesn't have any valid public key");
        Assert.Contains(loggers.Messages, m => m.Contains("the oct key has 128 bits", StringComparison.Ordinal));
    }

    [Fact]
    public async Task LocalJwksFilename_IsReadAtConfigTime()
    {
        var path = Path.Combine(Path.GetTempPath(), $"bowline-jwks-{Guid.NewGuid():N}.json");
        await File.WriteAllTextAsync(path, Keys.Jwks());
        try
        {
            var provider = Provider();
            provider.LocalJwks = new DataSource { Filename = path };
            var filter = Create(Config(Named("p"), ("p", provider)));
            File.Delete(path);

            var (status, _) = await RunAsync(filter, Bearer(Keys.Sign(Payload())));

            Assert.Equal(FilterStatus.Continue, status);
        }
        finally
        {
            File.Delete(path);
        }
    }
}
