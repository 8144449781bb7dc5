using System.Net;
using Bowline.EndToEnd.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Automatic mTLS through real sidecars and the real CA: each sidecar gets a SPIFFE certificate for its service
/// account, calls between sidecars are TLS with the server's identity checked, and PeerAuthentication decides whether
/// plaintext still gets in (PERMISSIVE, Istio's default) or not (STRICT).
/// </summary>
public sealed class MutualTlsTests
{
    private const string Host = "http://reviews:9080";
    private const string Cluster = "outbound|9080||reviews.default.svc.cluster.local";

    private static Task<(MeshHarness Mesh, TestBackend Backend, Sidecar Server, Sidecar Client)> StartAsync(params (string File, string Yaml)[] config) =>
        StartAsync(null, config);

    private static async Task<(MeshHarness Mesh, TestBackend Backend, Sidecar Server, Sidecar Client)> StartAsync(TimeSpan? certificateTtl, params (string File, string Yaml)[] config)
    {
        var backend = await TestBackend.StartAsync("v1");
        var mesh = await MeshHarness.StartMtlsAsync([("reviews.yaml", MeshYaml.Service("reviews", 9080)), .. config]);
        mesh.CertificateTtl = certificateTtl;
        var server = await mesh.StartSidecarAsync("reviews-v1", new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage" }, [], Cluster);
        return (mesh, backend, server, client);
    }

    private static string PeerAuthentication(string mode) => $$"""
        apiVersion: security.istio.io/v1
        kind: PeerAuthentication
        metadata: {name: default, namespace: default}
        spec:
          mtls: {mode: {{mode}}}
        """;

    [Fact]
    public async Task AutoMtls_SidecarToSidecar_IsTlsWithTheServersIdentity()
    {
        var (mesh, backend, server, client) = await StartAsync();
        await using var _ = mesh;
        await using var __ = backend;
        using var http = client.Client();

        using var response = await http.GetAsync(Host + "/");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.True(server.Host.Stats.ValueOf($"listener.127.0.0.1_{mesh.InboundPortOf("reviews-v1")}.ssl.handshake") >= 1);
    }

    [Theory]
    [InlineData("PERMISSIVE", true)]
    [InlineData("STRICT", false)]
    public async Task PeerAuthentication_PlaintextClientOutsideTheMesh_GetsInOnlyWhenPermissive(string mode, bool admitted)
    {
        var (mesh, backend, _, client) = await StartAsync(("peer-authentication.yaml", PeerAuthentication(mode)));
        await using var _ = mesh;
        await using var __ = backend;
        using var http = client.Client();
        // The mesh path works in both modes.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(Host + "/")).StatusCode);

        // A plaintext client straight to the sidecar's inbound port, as curl from outside the mesh would.
        using var plain = new HttpClient(new SocketsHttpHandler()) { Timeout = Timeouts.Short };
        var error = await Record.ExceptionAsync(() => plain.GetAsync($"http://127.0.0.1:{mesh.InboundPortOf("reviews-v1")}/"));

        Assert.Equal(admitted, error is null);
        if (!admitted)
        {
            Assert.IsType<HttpRequestException>(error);
        }
    }

    [Fact]
    public async Task Rotation_UnderSteadyTraffic_FailsNoRequest()
    {
        // The CA backdates certificates by a minute: a 64 s lifetime puts the half-life renewal about 2 s after each issue.
        var (mesh, backend, server, client) = await StartAsync(TimeSpan.FromSeconds(64), ("peer-authentication.yaml", PeerAuthentication("STRICT")));
        await using var _ = mesh;
        await using var __ = backend;
        var secrets = server.Host.Services.GetRequiredService<Bowline.Proxy.Tls.SecretStore>();
        string Serial() => secrets.Certificate(Bowline.Proxy.Identity.WorkloadAgent.CertificateSecretName)!.Leaf.SerialNumber;
        using var http = client.Client();
        using var stop = new CancellationTokenSource();
        var (ok, failed) = (0, 0);
        var traffic = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await http.GetAsync(Host + "/");
                if (response.IsSuccessStatusCode)
                {
                    ok++;
                }
                else
                {
                    failed++;
                }
            }
        });

        // Two renewals of the server's certificate (and as many of the client's) while requests keep flowing.
        var first = Serial();
        await secrets.WaitUntilAsync(_ => Serial() != first, Timeouts.Token(Timeouts.Long)).Within(Timeouts.Long);
        var second = Serial();
        await secrets.WaitUntilAsync(_ => Serial() != second, Timeouts.Token(Timeouts.Long)).Within(Timeouts.Long);
        await stop.CancelAsync();
        await traffic.Within(Timeouts.Short);

        Assert.Equal(0, failed);
        Assert.True(ok > 0);
        Assert.True(server.Host.Stats.ValueOf("bowline.agent.certificates_issued") >= 3);
    }

    [Fact]
    public async Task RootRotation_UnderSteadyTraffic_FailsNoRequest_AndEndsWithOnlyTheNewRoot()
    {
        // 64 s leaves (backdated a minute): agents renew 2 s after each issue, and the CA counts a leaf renewed 14.4 s
        // after issue, so the staged rotation switches and retires within about half a minute.
        var (mesh, backend, server, client) = await StartAsync(TimeSpan.FromSeconds(64), ("peer-authentication.yaml", PeerAuthentication("STRICT")));
        await using var _ = mesh;
        await using var __ = backend;
        var ca = mesh.ControlPlane.Services.GetRequiredService<Bowline.Ca.CertificateAuthority>();
        var oldRoot = Bowline.Ca.TrustBundle.Thumbprint(Assert.Single(ca.TrustBundle.Roots));
        var serverSecrets = server.Host.Services.GetRequiredService<Bowline.Proxy.Tls.SecretStore>();
        var clientSecrets = client.Host.Services.GetRequiredService<Bowline.Proxy.Tls.SecretStore>();
        using var http = client.Client();
        using var stop = new CancellationTokenSource();
        var (ok, failed) = (0, 0);
        var failures = new System.Collections.Concurrent.ConcurrentQueue<string>();
        var traffic = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var response = await http.GetAsync(Host + "/");
                if (response.IsSuccessStatusCode)
                {
                    ok++;
                }
                else
                {
                    failed++;
                    failures.Enqueue($"{(int)response.StatusCode} {string.Join(",", response.Headers.TryGetValues("x-bowline-response-flags", out var f) ? f : [])}");
                }
            }
        });

        // The operator's way in: the monitoring port, from loopback.
        using (var monitoring = new HttpClient { BaseAddress = mesh.ControlPlane.MonitoringAddress, Timeout = Timeouts.Short })
        using (var begun = await monitoring.PostAsync("/ca/rotate-root", null))
        {
            Assert.True(begun.IsSuccessStatusCode, await begun.Content.ReadAsStringAsync());
            using var again = await monitoring.PostAsync("/ca/rotate-root", null);
            Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        }
        var newRoot = ca.PendingRootThumbprint!;
        Assert.Equal(2, ca.TrustBundle.Roots.Count);
        // Each sidecar's leaf ends up under the new root, and its bundle ends up holding only the new root.
        bool Settled(Bowline.Proxy.Tls.SecretStore secrets) =>
            secrets.TrustBundle(Bowline.Proxy.Identity.WorkloadAgent.TrustBundleSecretName) is { Count: 1 } bundle
            && Bowline.Ca.TrustBundle.Thumbprint(bundle[0]) == newRoot
            && secrets.Certificate(Bowline.Proxy.Identity.WorkloadAgent.CertificateSecretName)!.Leaf.Issuer == bundle[0].Subject;
        await serverSecrets.WaitUntilAsync(Settled, Timeouts.Token(Timeouts.Long * 2)).Within(Timeouts.Long * 2);
        await clientSecrets.WaitUntilAsync(Settled, Timeouts.Token(Timeouts.Long)).Within(Timeouts.Long);
        await stop.CancelAsync();
        await traffic.Within(Timeouts.Short);

        Assert.True(failed == 0, $"{failed} of {ok + failed} requests failed during the rotation: {string.Join("; ", failures.Take(5))}");
        // New connections, with both sides on the new root alone, work too.
        using var fresh = client.Client();
        for (var i = 0; i < 10; i++)
        {
            using var response = await fresh.GetAsync(Host + "/");
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        Assert.Null(ca.PendingRootThumbprint);
        Assert.Equal(newRoot, Bowline.Ca.TrustBundle.Thumbprint(Assert.Single(ca.TrustBundle.Roots)));
        Assert.NotEqual(oldRoot, newRoot);
    }

    [Fact]
    public async Task OpensslClient_WithAMeshCertificate_SeesTls13AndTheServersSpiffeId()
    {
        var (mesh, backend, _, _) = await StartAsync(("peer-authentication.yaml", PeerAuthentication("STRICT")));
        await using var __ = mesh;
        await using var ___ = backend;
        var work = Directory.CreateTempSubdirectory("bowline-openssl-").FullName;
        var ca = mesh.CaDirectory!;
        // An independent TLS stack end to end: openssl makes a client SVID signed by the mesh CA and connects as curl would.
        var script = $$"""
            set -e
            cd {{work}}
            openssl ecparam -name prime256v1 -genkey -noout -out key.pem
            openssl req -new -key key.pem -subj /O=cluster.local -out client.csr
            printf 'subjectAltName=critical,URI:spiffe://cluster.local/ns/default/sa/curl\nextendedKeyUsage=clientAuth,serverAuth\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature,keyEncipherment\n' > ext.cnf
            openssl x509 -req -in client.csr -CA {{ca}}/ca-cert.pem -CAkey {{ca}}/ca-key.pem -set_serial 0x1234 -days 1 -extfile ext.cnf -out client.pem
            openssl s_client -connect 127.0.0.1:{{mesh.InboundPortOf("reviews-v1")}} -alpn istio-http/1.1 -cert client.pem -key key.pem -CAfile {{ca}}/root-cert.pem -verify_return_error < /dev/null > session.txt 2>&1
            cat session.txt
            openssl x509 -noout -ext subjectAltName < session.txt
            """;
        await using var openssl = ChildProcess.Start("bash", ["-c", script]);
        var exit = await openssl.WaitForExitAsync(Timeouts.Long);
        Directory.Delete(work, recursive: true);

        Assert.True(exit == 0, openssl.Output);
        Assert.Contains("TLSv1.3", openssl.Output, StringComparison.Ordinal);
        Assert.Contains("Verify return code: 0 (ok)", openssl.Output, StringComparison.Ordinal);
        Assert.Contains("URI:spiffe://cluster.local/ns/default/sa/reviews", openssl.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MigrationTask_PermissiveThenStrict_CurlFromOutsideTheMeshIsCutOffWhileTheMeshKeepsWorking()
    {
        // Istio's "Mutual TLS Migration" task: a client without a sidecar (curl, as the task's "legacy" namespace) and one
        // with, first under the default PERMISSIVE mode, then with a mesh-wide STRICT PeerAuthentication applied live.
        var (mesh, backend, server, client) = await StartAsync();
        await using var _ = mesh;
        await using var __ = backend;
        using var http = client.Client();
        var inbound = $"http://127.0.0.1:{mesh.InboundPortOf("reviews-v1")}/";

        Assert.Equal(200, await CurlAsync(inbound));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(Host + "/")).StatusCode);

        await mesh.WriteConfigAsync("peer-authentication.yaml", """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: istio-system}
            spec:
              mtls: {mode: STRICT}
            """);
        await server.Host.Snapshots.WaitUntilAsync(s => s.Listeners.Values.Any(l => l.Name == "virtualInbound" && l.Match(Bowline.Proxy.Listeners.ConnectionMetadata.Plaintext(mesh.InboundPortOf("reviews-v1"))) is null),
            Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);

        // curl exits 56 (connection reset) or 52 (empty reply) and reports no HTTP status: plaintext no longer gets in.
        Assert.Equal(0, await CurlAsync(inbound));
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync(Host + "/")).StatusCode);
    }

    /// <summary>The HTTP status curl got, 0 when it got none.</summary>
    private static async Task<int> CurlAsync(string url)
    {
        await using var curl = ChildProcess.Start("curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "--max-time", "10", url]);
        await curl.WaitForExitAsync(Timeouts.Short);
        return int.TryParse(curl.Output.Trim(), out var code) ? code : -1;
    }
}
