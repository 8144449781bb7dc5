using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca.Internal;
using Bowline.Ca.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Ca.Tests;

public sealed class CertificateAuthorityTests
{
    [Fact]
    public void Sign_ValidCsr_LeafHasExactlyTheSpiffeSanAndIstioWorkloadExtensions()
    {
        using var ca = new TestCa();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        // The CSR asks for CA powers and more; none of it may reach the leaf.
        var csr = TestCa.Csr(ECDsa.Create(key.ExportParameters(includePrivateParameters: true)), b => b.AddUri(new Uri(ca.SpiffeId(TestCa.Reviews))), r =>
        {
            r.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
            r.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
            r.CertificateExtensions.Add(new X509Extension("1.3.6.1.4.1.99999.1", [0x05, 0x00], false));
        });

        var chain = ca.Ca.Sign(csr, TestCa.Reviews);

        using var leaf = TestCa.Load(chain[0]);
        var root = ca.Ca.TrustBundle.Roots[0];
        Assert.Equal("", leaf.Subject);
        Assert.Equal(root.Subject, leaf.Issuer);
        Assert.Equal(
            new[] { "2.5.29.14", "2.5.29.15", "2.5.29.17", "2.5.29.19", "2.5.29.35", "2.5.29.37" },
            leaf.Extensions.Select(e => e.Oid!.Value!).Order(StringComparer.Ordinal));

        var san = leaf.Extensions["2.5.29.17"]!;
        Assert.True(san.Critical);
        Assert.Equal([(6, "spiffe://cluster.local/ns/default/sa/bookinfo-reviews")], TestCa.SanNames(leaf));

        var usage = Assert.IsType<X509KeyUsageExtension>(leaf.Extensions["2.5.29.15"]);
        Assert.True(usage.Critical);
        Assert.Equal(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, usage.KeyUsages);

        var eku = Assert.IsType<X509EnhancedKeyUsageExtension>(leaf.Extensions["2.5.29.37"]);
        Assert.Equal(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"], eku.EnhancedKeyUsages.Cast<Oid>().Select(o => o.Value!).Order(StringComparer.Ordinal));

        var constraints = Assert.IsType<X509BasicConstraintsExtension>(leaf.Extensions["2.5.29.19"]);
        Assert.True(constraints.Critical);
        Assert.False(constraints.CertificateAuthority);

        var ski = Assert.IsType<X509SubjectKeyIdentifierExtension>(leaf.Extensions["2.5.29.14"]);
        Assert.Equal(new X509SubjectKeyIdentifierExtension(leaf.PublicKey, false).SubjectKeyIdentifier, ski.SubjectKeyIdentifier);
        Assert.Equal(key.ExportSubjectPublicKeyInfo(), leaf.PublicKey.ExportSubjectPublicKeyInfo());
        var aki = Assert.IsType<X509AuthorityKeyIdentifierExtension>(leaf.Extensions["2.5.29.35"]);
        var rootSki = Assert.IsType<X509SubjectKeyIdentifierExtension>(root.Extensions["2.5.29.14"]);
        Assert.Equal(rootSki.SubjectKeyIdentifierBytes.ToArray(), aki.KeyIdentifier!.Value.ToArray());

        // 128 random bits, positive, minimally encoded.
        var serial = leaf.SerialNumberBytes.ToArray();
        Assert.True(serial.Length is 16 or 17, $"serial of {serial.Length} bytes");
        Assert.True(serial.Length == 16 ? serial[0] < 0x80 : serial[0] == 0 && serial[1] >= 0x80);

        Assert.Equal(TestCa.Start - TimeSpan.FromMinutes(1), new DateTimeOffset(leaf.NotBefore.ToUniversalTime()));
        Assert.Equal(TestCa.Start + TimeSpan.FromHours(24), new DateTimeOffset(leaf.NotAfter.ToUniversalTime()));
    }

    [Fact]
    public void Sign_TwoRequests_SerialsDiffer()
    {
        using var ca = new TestCa();
        using var first = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);
        using var second = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);
        Assert.NotEqual(first.SerialNumber, second.SerialNumber);
    }

    [Fact]
    public void Sign_SelfSignedRoot_ChainIsLeafThenRootAndVerifiesWithX509Chain()
    {
        using var ca = new TestCa();

        var chain = ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);

        Assert.Equal(2, chain.Count);
        Assert.Equal(ca.Ca.TrustBundle.Pem, chain[1]);
        using var leaf = TestCa.Load(chain[0]);
        var root = Assert.Single(TestCa.LoadAll(chain[1]));
        var (valid, status, elements) = TestCa.Verify(leaf, [root], TestCa.Start);
        Assert.True(valid, status);
        Assert.Equal(root.Thumbprint, elements[^1].Thumbprint);
        // Trusting some other root, the same leaf does not verify.
        using var stranger = new TestCa();
        Assert.False(TestCa.Verify(leaf, stranger.Ca.TrustBundle.Roots, TestCa.Start).Valid);
    }

    [Theory]
    [InlineData("rsa-2048")]
    [InlineData("p-384")]
    public void Sign_AcceptedKeyTypes_Issue(string kind)
    {
        using var ca = new TestCa();
        AsymmetricAlgorithm key = kind == "rsa-2048" ? RSA.Create(2048) : ECDsa.Create(ECCurve.NamedCurves.nistP384);

        var chain = ca.Ca.Sign(TestCa.Csr(key, b => b.AddUri(new Uri(ca.SpiffeId(TestCa.Reviews)))), TestCa.Reviews);

        using var leaf = TestCa.Load(chain[0]);
        Assert.True(TestCa.Verify(leaf, ca.Ca.TrustBundle.Roots, TestCa.Start).Valid);
    }

    [Theory]
    [InlineData("two URI SANs", CertificateRequestRefusal.InvalidIdentity, "2 SANs")]
    [InlineData("URI and DNS SANs", CertificateRequestRefusal.InvalidIdentity, "2 SANs")]
    [InlineData("DNS SAN", CertificateRequestRefusal.InvalidIdentity, "is a DNS name, not a URI")]
    [InlineData("no SAN", CertificateRequestRefusal.InvalidIdentity, "no subjectAltName")]
    [InlineData("not SPIFFE", CertificateRequestRefusal.InvalidIdentity, "is not a SPIFFE ID")]
    [InlineData("SPIFFE but no ns/sa", CertificateRequestRefusal.InvalidIdentity, "is not of the form spiffe://cluster.local/ns/<namespace>/sa/<service-account>")]
    [InlineData("another identity", CertificateRequestRefusal.IdentityMismatch, "asks for spiffe://cluster.local/ns/default/sa/bookinfo-ratings but the caller's credentials prove spiffe://cluster.local/ns/default/sa/bookinfo-reviews")]
    [InlineData("another trust domain", CertificateRequestRefusal.IdentityMismatch, "asks for trust domain 'example.org' but this CA issues identities in 'cluster.local'")]
    [InlineData("malformed PEM", CertificateRequestRefusal.MalformedCsr, "not a valid, correctly signed PKCS#10 request")]
    [InlineData("bad signature", CertificateRequestRefusal.MalformedCsr, "not a valid, correctly signed PKCS#10 request")]
    [InlineData("empty", CertificateRequestRefusal.MalformedCsr, "carries no CSR")]
    [InlineData("RSA 1024", CertificateRequestRefusal.UnsupportedKey, "RSA key has 1024 bits")]
    [InlineData("P-521", CertificateRequestRefusal.UnsupportedKey, "only P-256 and P-384 are accepted")]
    public void Sign_RefusedCsr_ThrowsNamingTheProblem(string kind, CertificateRequestRefusal refusal, string message)
    {
        using var ca = new TestCa();
        var reviews = ca.SpiffeId(TestCa.Reviews);
        var csr = kind switch
        {
            "two URI SANs" => TestCa.Csr(reviews, ca.SpiffeId(TestCa.Ratings)),
            "URI and DNS SANs" => TestCa.Csr(P256(), b => { b.AddUri(new Uri(reviews)); b.AddDnsName("reviews.default.svc"); }),
            "DNS SAN" => TestCa.Csr(P256(), b => b.AddDnsName("reviews.default.svc")),
            "no SAN" => TestCa.Csr(P256(), null),
            "not SPIFFE" => TestCa.Csr("https://reviews.default.svc/"),
            "SPIFFE but no ns/sa" => TestCa.Csr("spiffe://cluster.local/reviews"),
            "another identity" => TestCa.Csr(ca.SpiffeId(TestCa.Ratings)),
            "another trust domain" => TestCa.Csr("spiffe://example.org/ns/default/sa/bookinfo-reviews"),
            "malformed PEM" => "-----BEGIN CERTIFICATE REQUEST-----\nTm90IGEgQ1NS\n-----END CERTIFICATE REQUEST-----\n",
            "bad signature" => TamperSignature(TestCa.Csr(reviews)),
            "empty" => "",
            "RSA 1024" => TestCa.Csr(RSA.Create(1024), b => b.AddUri(new Uri(reviews))),
            "P-521" => TestCa.Csr(ECDsa.Create(ECCurve.NamedCurves.nistP521), b => b.AddUri(new Uri(reviews))),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };

        var e = Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign(csr, TestCa.Reviews));

        Assert.Equal(refusal, e.Refusal);
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
        Assert.Empty(ca.Ca.IdentitiesWithLeavesUnder(TrustBundle.Thumbprint(ca.Ca.TrustBundle.Roots[0])));
    }

    [Theory]
    [InlineData(null, 24.0)]
    [InlineData(0.0, 24.0)]
    [InlineData(-5.0, 24.0)]
    [InlineData(1.0, 1.0)]
    [InlineData(48.0, 48.0)]
    [InlineData(24.0 * 1000, 24.0 * 90)]
    public void Sign_RequestedTtl_IsUsedUpToTheMaximum(double? hours, double expectedHours)
    {
        using var ca = new TestCa();

        var chain = ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews, hours is { } h ? TimeSpan.FromHours(h) : null);

        using var leaf = TestCa.Load(chain[0]);
        Assert.Equal(TestCa.Start + TimeSpan.FromHours(expectedHours), new DateTimeOffset(leaf.NotAfter.ToUniversalTime()));
    }

    [Fact]
    public void Sign_ConfiguredMaximumAndDefault_AreApplied()
    {
        using var ca = new TestCa(o => o with { DefaultCertificateTtl = TimeSpan.FromHours(1), MaxCertificateTtl = TimeSpan.FromHours(2), ClockSkewAllowance = TimeSpan.FromSeconds(30) });

        using var byDefault = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);
        using var capped = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews, TimeSpan.FromHours(5))[0]);

        Assert.Equal(TestCa.Start.AddHours(1), new DateTimeOffset(byDefault.NotAfter.ToUniversalTime()));
        Assert.Equal(TestCa.Start.AddHours(2), new DateTimeOffset(capped.NotAfter.ToUniversalTime()));
        Assert.Equal(TestCa.Start.AddSeconds(-30), new DateTimeOffset(capped.NotBefore.ToUniversalTime()));
    }

    [Fact]
    public void Sign_BurstExhausted_RateLimitsThatIdentityUntilTokensRefill()
    {
        using var ca = new TestCa(o => o with { RateLimitBurst = 2, RateLimitPerSecond = 0.5 });
        var csr = TestCa.Csr(ca.SpiffeId(TestCa.Reviews));
        using var metrics = new MeterRecorder(ca.Ca.Metrics.Meter);

        ca.Ca.Sign(csr, TestCa.Reviews);
        ca.Ca.Sign(csr, TestCa.Reviews);
        var e = Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign(csr, TestCa.Reviews));

        Assert.Equal(CertificateRequestRefusal.RateLimited, e.Refusal);
        Assert.Contains("retry in 2s", e.Message, StringComparison.Ordinal);
        Assert.Equal(1, metrics["citadel_server_rate_limited_count"]);
        // Another identity has its own bucket.
        ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Ratings)), TestCa.Ratings);

        ca.Time.Advance(TimeSpan.FromSeconds(1));
        Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign(csr, TestCa.Reviews));
        ca.Time.Advance(TimeSpan.FromSeconds(1));
        ca.Ca.Sign(csr, TestCa.Reviews);
        Assert.Equal(2, metrics["citadel_server_rate_limited_count"]);
    }

    [Fact]
    public void Sign_Outcomes_AreCountedUnderIstioNames()
    {
        using var ca = new TestCa();
        using var metrics = new MeterRecorder(ca.Ca.Metrics.Meter);

        ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);
        Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign("garbage", TestCa.Reviews));
        Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Ratings)), TestCa.Reviews));

        Assert.Equal(1, metrics["citadel_server_success_cert_issuance_count"]);
        Assert.Equal(1, metrics["citadel_server_csr_parsing_err_count/MalformedCsr"]);
        Assert.Equal(1, metrics["citadel_server_id_extraction_err_count/IdentityMismatch"]);
    }

    [Fact]
    public void AuthenticationFailed_Flood_IsCountedAlwaysAndLoggedOncePerFiveSeconds()
    {
        using var directory = new TemporaryDirectory();
        var time = new FakeTimeProvider(TestCa.Start);
        using var logs = new ListLoggerProvider();
        using var loggers = LoggerFactory.Create(b => b.AddProvider(logs));
        using var ca = CertificateAuthority.Open(new CaOptions { Directory = directory.Path }, time, loggers);
        using var metrics = new MeterRecorder(ca.Metrics.Meter);

        for (var i = 0; i < 10; i++)
        {
            ca.AuthenticationFailed("ipv4:127.0.0.1:4000", "the bearer token is not one this control plane issued");
        }
        time.Advance(TimeSpan.FromSeconds(5));
        ca.AuthenticationFailed("ipv4:127.0.0.1:4000", "again");

        Assert.Equal(11, metrics["citadel_server_authentication_failure_count"]);
        var lines = logs.Lines.Where(l => l.Contains("unauthenticated", StringComparison.Ordinal)).ToList();
        Assert.Equal(2, lines.Count);
        Assert.Contains("(0 more since the last such line", lines[0], StringComparison.Ordinal);
        Assert.Contains("again (9 more since the last such line", lines[1], StringComparison.Ordinal);
    }

    [Fact]
    public void Open_InvalidTrustDomain_Throws()
    {
        using var directory = new TemporaryDirectory();
        var e = Assert.Throws<ArgumentException>(() => CertificateAuthority.Open(new CaOptions { Directory = directory.Path, TrustDomain = "Cluster Local" }, TimeProvider.System));
        Assert.Contains("not a SPIFFE trust domain", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sign_CustomTrustDomain_IssuesInIt()
    {
        using var ca = new TestCa(o => o with { TrustDomain = "mesh.example.org" });

        using var leaf = TestCa.Load(ca.Ca.Sign(TestCa.Csr("spiffe://mesh.example.org/ns/default/sa/bookinfo-reviews"), TestCa.Reviews)[0]);

        Assert.Equal([(6, "spiffe://mesh.example.org/ns/default/sa/bookinfo-reviews")], TestCa.SanNames(leaf));
        Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign(TestCa.Csr("spiffe://cluster.local/ns/default/sa/bookinfo-reviews"), TestCa.Reviews));
    }

    [Fact]
    public void Sign_LargeCsr_IsRefusedBeforeParsing()
    {
        using var ca = new TestCa();
        var e = Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign(new string('A', CsrInspector.MaxPemLength + 1), TestCa.Reviews));
        Assert.Equal(CertificateRequestRefusal.MalformedCsr, e.Refusal);
    }

    private static ECDsa P256() => ECDsa.Create(ECCurve.NamedCurves.nistP256);

    private static string TamperSignature(string pem)
    {
        var der = PemEncoding.Find(pem) is var fields ? Convert.FromBase64String(pem[fields.Base64Data]) : [];
        // The signature is the last bytes of the CSR.
        der[^3] ^= 0x5A;
        return PemEncoding.WriteString("CERTIFICATE REQUEST", der);
    }
}
