using System.Security.Cryptography.X509Certificates;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// What a sidecar's inbound under a STRICT PeerAuthentication lets in at the TLS layer: a client that connects
/// straight to it with Istio's ALPN <c>istio</c>, as a client sidecar does, and presents a certificate the test made
/// (signed with the mesh CA's own key, or not). Only a well-formed X.509-SVID of the mesh's trust domain from the
/// mesh's roots gets an HTTP response; every other is refused before any request reaches the app, counted in the
/// listener's <c>ssl.fail_verify_*</c> counter of its kind, and logged with the reason.
/// </summary>
public sealed class ClientCertificateTests
{
    private const string Workload = "reviews-v1";

    private const string MeshWideStrict = """
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: default, namespace: istio-system}
        spec:
          mtls: {mode: STRICT}
        """;

    private sealed record Mesh(MeshHarness Harness, TestBackend Backend, Sidecar Server, LogCapture Log, MeshCertificates Certificates) : IAsyncDisposable
    {
        public int InboundPort => Harness.InboundPortOf(Workload);

        public long Stat(string name) => Server.Host.Stats.ValueOf($"listener.127.0.0.1_{InboundPort}.ssl.{name}");

        public async ValueTask DisposeAsync()
        {
            Certificates.Dispose();
            await Harness.DisposeAsync();
            await Backend.DisposeAsync();
        }
    }

    private static async Task<Mesh> StartAsync()
    {
        var backend = await TestBackend.StartAsync("v1");
        var harness = await MeshHarness.StartMtlsAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)), ("peer-authentication.yaml", MeshWideStrict));
        var log = new LogCapture();
        harness.SidecarLogging = log.Configure;
        var server = await harness.StartSidecarAsync(Workload, new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        return new Mesh(harness, backend, server, log, MeshCertificates.Load(harness.CaDirectory!));
    }

    /// <summary>The flawed certificates, by name: what the test presents, the counter it must land in and the reason the proxy logs.</summary>
    private static (X509Certificate2? Certificate, string Counter, string Reason) Flawed(string flaw, MeshCertificates ca)
    {
        const string Curl = "spiffe://cluster.local/ns/default/sa/curl";
        var now = DateTimeOffset.UtcNow;
        return flaw switch
        {
            // Valid for ten seconds from the CA's own start, which the CA backdates by a minute: long expired now.
            "expired" => (ca.Leaf([Curl], ca.Ca.NotBefore.ToUniversalTime(), ca.Ca.NotBefore.ToUniversalTime().AddSeconds(10)), "fail_verify_error", "the certificate chain does not verify against the trusted roots (certificate has expired)"),
            // Signed by the mesh's own CA: only the trust-domain check can refuse it.
            "other-trust-domain" => (ca.Leaf(["spiffe://example.org/ns/default/sa/curl"]), "fail_verify_san", "no subject alternative name (spiffe://example.org/ns/default/sa/curl) is one this context accepts"),
            "self-signed" => (ca.Leaf([Curl], now.AddMinutes(-1), now.AddDays(1), selfSigned: true), "fail_verify_error", "the certificate chain does not verify against the trusted roots (self-signed certificate)"),
            "ca-flagged" => (ca.Leaf([Curl], certificateAuthority: true), "fail_verify_error", "the certificate is a CA certificate; a workload identity must not be"),
            "two-uri-sans" => (ca.Leaf([Curl, "spiffe://cluster.local/ns/default/sa/bookinfo-productpage"]), "fail_verify_error", "an X.509-SVID has exactly one URI SAN; this certificate has 2"),
            "none" => (null, "fail_verify_no_cert", "the peer presented no certificate"),
            _ => throw new ArgumentOutOfRangeException(nameof(flaw), flaw, "no such flaw"),
        };
    }

    [Theory]
    [InlineData("expired")]
    [InlineData("other-trust-domain")]
    [InlineData("self-signed")]
    [InlineData("ca-flagged")]
    [InlineData("two-uri-sans")]
    [InlineData("none")]
    public async Task Strict_FlawedClientCertificate_IsRefusedBeforeAnyRequest_CountedAndLoggedWithTheReason(string flaw)
    {
        await using var mesh = await StartAsync();
        var (certificate, counter, reason) = Flawed(flaw, mesh.Certificates);
        using var _ = certificate;
        string[] counters = ["fail_verify_error", "fail_verify_san", "fail_verify_no_cert"];

        var outcome = await MeshTlsClient.SendAsync(mesh.InboundPort, certificate, "/flawed");

        // TLS 1.3 lets the client finish its side of the handshake before the server has read its certificate, so the
        // refusal is either the handshake failing or the connection closing with an alert and no response.
        Assert.True(outcome.Error is not null || outcome.Response.Length == 0, $"a {flaw} client certificate got a response: {outcome.Response}");
        Assert.Equal(0, outcome.Status);
        Assert.Empty(mesh.Backend.Received);
        Assert.All(counters, c => Assert.Equal(c == counter ? 1 : 0, mesh.Stat(c)));
        Assert.Equal(0, mesh.Stat("handshake"));
        var line = await mesh.Log.WaitForAsync(l => l.Contains("TLS handshake with 127.0.0.1 failed", StringComparison.Ordinal), Timeouts.Short);
        Assert.Contains(reason, line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Strict_WellFormedLeafFromTheMeshCa_IsAccepted_AndTheServerIsTheWorkloadsIdentity()
    {
        await using var mesh = await StartAsync();
        using var certificate = mesh.Certificates.Workload("curl");

        var outcome = await MeshTlsClient.SendAsync(mesh.InboundPort, certificate, "/well-formed");

        Assert.Null(outcome.Error);
        Assert.Equal(200, outcome.Status);
        Assert.Contains("backend=v1", outcome.Response, StringComparison.Ordinal);
        Assert.Equal(("reviews:9080", "/well-formed"), Assert.Single(mesh.Backend.Received));
        Assert.Equal(1, mesh.Stat("handshake"));
        Assert.Equal(0, mesh.Stat("fail_verify_error") + mesh.Stat("fail_verify_san") + mesh.Stat("fail_verify_no_cert"));
        using var server = outcome.ServerCertificate;
        Assert.NotNull(server);
        Assert.Contains("URI:spiffe://cluster.local/ns/default/sa/reviews", server.Extensions["2.5.29.17"]!.Format(false), StringComparison.Ordinal);
        // The server's leaf chains to the mesh's root, which signed the test's certificate too.
        using var chain = new X509Chain { ChainPolicy = { TrustMode = X509ChainTrustMode.CustomRootTrust, RevocationMode = X509RevocationMode.NoCheck, CustomTrustStore = { mesh.Certificates.Ca } } };
        Assert.True(chain.Build(server), string.Join(", ", chain.ChainStatus.Select(s => s.StatusInformation)));
    }
}
