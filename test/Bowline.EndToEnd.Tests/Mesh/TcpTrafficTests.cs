using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Bowline.EndToEnd.Tests.Infrastructure;
using Bowline.Proxy;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// TCP through a real mesh with mTLS on and STRICT PeerAuthentication: Istio's "TCP Traffic Shifting" task (a TCP
/// gateway server on 31400, tcp-echo v1 and v2 behind sidecars, a tcp route moved from 100% v1 to 80/20) and its
/// "Ingress Gateway without TLS Termination" task (a PASSTHROUGH server routing by SNI to an app that terminates its
/// own TLS). Gateway to sidecar is mesh mTLS; the sidecars' TCP inbound ports refuse plaintext.
/// </summary>
public sealed class TcpTrafficTests : IAsyncLifetime
{
    private const string Cluster = "outbound|9000|v1|tcp-echo.default.svc.cluster.local";

    private readonly int _tcpPort = Ports.Free();
    private readonly int _tlsPort = Ports.Free();
    private X509Certificate2 _nginxCertificate = null!;
    private TcpEchoBackend _one = null!;
    private TcpEchoBackend _two = null!;
    private TcpEchoBackend _nginx = null!;
    private MeshHarness _mesh = null!;
    private ProxyHost _gateway = null!;
    private Sidecar _echoV1 = null!;

    private static string TcpRoute(string routes) => $$"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: tcp-echo, namespace: default}
        spec:
          hosts: ['*']
          gateways: [tcp-echo-gateway]
          tcp:
          - match: [{port: 31400}]
            route:
        {{routes}}
        """;

    public async Task InitializeAsync()
    {
        using (var key = ECDsa.Create(ECCurve.NamedCurves.nistP256))
        {
            var request = new CertificateRequest("CN=nginx.example.com, O=some organization", key, HashAlgorithmName.SHA256);
            var san = new SubjectAlternativeNameBuilder();
            san.AddDnsName("nginx.example.com");
            request.CertificateExtensions.Add(san.Build());
            using var created = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(30));
            _nginxCertificate = X509CertificateLoader.LoadPkcs12(created.Export(X509ContentType.Pkcs12), null);
        }
        _one = TcpEchoBackend.Start("one");
        _two = TcpEchoBackend.Start("two");
        _nginx = TcpEchoBackend.Start("nginx", _nginxCertificate);
        _mesh = await MeshHarness.StartMtlsAsync(
            ("tcp-echo.yaml", MeshYaml.Service("tcp-echo", 9000, portName: "tcp")),
            ("tcp-echo-subsets.yaml", MeshYaml.Subsets("tcp-echo", "v1", "v2")),
            ("my-nginx.yaml", MeshYaml.Service("my-nginx", 443, portName: "https")),
            ("strict.yaml", """
                apiVersion: security.istio.io/v1
                kind: PeerAuthentication
                metadata: {name: default, namespace: default}
                spec: {mtls: {mode: STRICT}}
                """),
            ("gateway.yaml", """
                apiVersion: networking.istio.io/v1
                kind: Gateway
                metadata: {name: tcp-echo-gateway, namespace: default}
                spec:
                  selector: {istio: ingressgateway}
                  servers:
                  - port: {number: 31400, name: tcp, protocol: TCP}
                    hosts: ['*']
                  - port: {number: 443, name: tls, protocol: TLS}
                    tls: {mode: PASSTHROUGH}
                    hosts: [nginx.example.com]
                """),
            ("nginx-vs.yaml", """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: nginx, namespace: default}
                spec:
                  hosts: [nginx.example.com]
                  gateways: [tcp-echo-gateway]
                  tls:
                  - match: [{port: 443, sniHosts: [nginx.example.com]}]
                    route: [{destination: {host: my-nginx, port: {number: 443}}}]
                """),
            ("tcp-echo-vs.yaml", TcpRoute("    - destination: {host: tcp-echo, port: {number: 9000}, subset: v1}")));
        _echoV1 = await _mesh.StartSidecarAsync("tcp-echo-v1", new Dictionary<string, string> { ["app"] = "tcp-echo", ["version"] = "v1" }, [("tcp", 9000, _one.Port)]);
        await _mesh.StartSidecarAsync("tcp-echo-v2", new Dictionary<string, string> { ["app"] = "tcp-echo", ["version"] = "v2" }, [("tcp", 9000, _two.Port)]);
        await _mesh.StartSidecarAsync("my-nginx", new Dictionary<string, string> { ["app"] = "my-nginx" }, [("https", 443, _nginx.Port)]);
        _gateway = await _mesh.StartGatewayAsync(new Dictionary<int, int> { [31400] = _tcpPort, [443] = _tlsPort }, new Random(20261202),
            Cluster, "outbound|9000|v2|tcp-echo.default.svc.cluster.local", "outbound|443||my-nginx.default.svc.cluster.local");
    }

    public async Task DisposeAsync()
    {
        await _mesh.DisposeAsync();
        await _one.DisposeAsync();
        await _two.DisposeAsync();
        await _nginx.DisposeAsync();
        _nginxCertificate.Dispose();
    }

    /// <summary>One connection: send a line, read the echo, close (as the task's <c>nc</c> loop does).</summary>
    private static async Task<string> EchoAsync(int port, string line)
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, port).WaitAsync(Timeouts.Short);
        var stream = client.GetStream();
        await stream.WriteAsync(Encoding.UTF8.GetBytes(line + "\n")).AsTask().WaitAsync(Timeouts.Short);
        using var reader = new StreamReader(stream);
        return await reader.ReadLineAsync().WaitAsync(Timeouts.Short) ?? "";
    }

    [Fact]
    public async Task TcpTrafficShifting_AllToV1_Then80To20_ThroughMeshMtls()
    {
        for (var i = 0; i < 20; i++)
        {
            Assert.Equal($"one hello {i}", await EchoAsync(_tcpPort, $"hello {i}"));
        }

        var before = _gateway.Snapshots.Current.Listeners["0.0.0.0_31400"];
        await _mesh.WriteConfigAsync("tcp-echo-vs.yaml", TcpRoute("""
                - destination: {host: tcp-echo, port: {number: 9000}, subset: v1}
                  weight: 80
                - destination: {host: tcp-echo, port: {number: 9000}, subset: v2}
                  weight: 20
            """));
        await _gateway.Snapshots.WaitUntilAsync(s => s.Listeners.TryGetValue("0.0.0.0_31400", out var l) && l != before && l.IsWarm, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);

        var counts = new Dictionary<string, int>(StringComparer.Ordinal) { ["one"] = 0, ["two"] = 0 };
        const int Connections = 200;
        for (var i = 0; i < Connections; i++)
        {
            var answer = await EchoAsync(_tcpPort, "hello");
            var word = answer.Split(' ')[0];
            Assert.True(counts.ContainsKey(word), $"unexpected answer '{answer}'");
            counts[word]++;
        }
        // The gateway's picks are seeded; the bound (mean 40 of 200, 5 standard deviations either way) holds regardless.
        Assert.InRange(counts["two"], 12, 68);
        Assert.Equal(Connections, counts["one"] + counts["two"]);
        // Every connection crossed the mesh over mTLS: the sidecars' TCP inbound ports are STRICT.
        Assert.True(_gateway.Stats.ValueOf("cluster.outbound|9000|v2|tcp-echo.default.svc.cluster.local.upstream_cx_total") == counts["two"]);
    }

    private static string EchoPolicy(string rule) => $$$"""
        apiVersion: security.istio.io/v1
        kind: AuthorizationPolicy
        metadata: {name: tcp-policy, namespace: default}
        spec:
          selector:
            matchLabels: {app: tcp-echo}
          action: ALLOW
          rules: [{{{rule}}}]
        """;

    /// <summary>Applies the policy and waits until the v1 sidecar serves a new inbound listener built from it.</summary>
    private async Task ApplyEchoPolicyAsync(string rule)
    {
        var before = _echoV1.Host.Snapshots.Current.Listeners["virtualInbound"];
        await _mesh.WriteConfigAsync("tcp-policy.yaml", EchoPolicy(rule));
        await _echoV1.Host.Snapshots.WaitUntilAsync(s => s.Listeners.TryGetValue("virtualInbound", out var l) && l != before && l.IsWarm, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
    }

    /// <summary>An echo through the gateway, or null when the connection is closed without one.</summary>
    private async Task<string?> TryEchoAsync(string line)
    {
        try
        {
            var answer = await EchoAsync(_tcpPort, line);
            return answer.Length == 0 ? null : answer;
        }
        catch (IOException)
        {
            return null;
        }
    }

    [Fact]
    public async Task TcpAuthorization_ThePeersMtlsIdentityDecides_AndAnAllowRuleOnHttpFieldsAdmitsNothing()
    {
        // Istio's "Authorization for TCP traffic" task, with the caller's identity: the gateway's certificate.
        await ApplyEchoPolicyAsync("{from: [{source: {principals: [cluster.local/ns/default/sa/istio-ingressgateway]}}], to: [{operation: {ports: ['9000']}}]}");
        Assert.Equal("one admitted", await TryEchoAsync("admitted"));

        await ApplyEchoPolicyAsync("{from: [{source: {principals: [cluster.local/ns/default/sa/somebody-else]}}]}");
        var connectionsBefore = _one.Connections;
        Assert.Null(await TryEchoAsync("refused"));
        Assert.Equal(connectionsBefore, _one.Connections);
        Assert.True(_echoV1.Host.Stats.ValueOf("tcp.rbac.denied") >= 1);

        // A method is an HTTP attribute: on a TCP port the rule admits nothing, as Istio documents.
        await ApplyEchoPolicyAsync("{to: [{operation: {methods: [GET], ports: ['9000']}}]}");
        Assert.Null(await TryEchoAsync("get"));
    }

    [Fact]
    public async Task SidecarToSidecarTcp_ExplicitMode_TheAppDialsItsLocalPort_AndTheMeshTcpRouteDecides()
    {
        var local = Ports.Free();
        var client = await _mesh.StartSidecarAsync("sleep", new Dictionary<string, string> { ["app"] = "sleep" }, [], null, "",
            new Dictionary<string, int> { ["tcp-echo.default.svc.cluster.local:9000"] = local }, "outbound|9000||tcp-echo.default.svc.cluster.local");

        // No VirtualService for the mesh: the service's cluster, both versions, over mTLS into STRICT inbound ports.
        var words = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < 40 && words.Count < 2; i++)
        {
            words.Add((await EchoAsync(local, "hello")).Split(' ')[0]);
        }
        Assert.Equal(["one", "two"], words.Order(StringComparer.Ordinal));

        // A mesh tcp route for the sleep workload pins it to v2.
        var before = client.Host.Snapshots.Current.Listeners[$"127.0.0.1_{local}"];
        await _mesh.WriteConfigAsync("tcp-echo-mesh.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: tcp-echo-mesh, namespace: default}
            spec:
              hosts: [tcp-echo]
              tcp:
              - match: [{sourceLabels: {app: sleep}}]
                route: [{destination: {host: tcp-echo, subset: v2}}]
            """);
        await client.Host.Snapshots.WaitUntilAsync(s => s.Listeners.TryGetValue($"127.0.0.1_{local}", out var l) && l != before && l.IsWarm && s.Clusters.ContainsKey("outbound|9000|v2|tcp-echo.default.svc.cluster.local"), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        await client.Host.Snapshots.Current.Clusters["outbound|9000|v2|tcp-echo.default.svc.cluster.local"].WaitUntilAsync(c => c?.Hosts.Available.Length > 0, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        for (var i = 0; i < 10; i++)
        {
            Assert.Equal("two hello", await EchoAsync(local, "hello"));
        }
    }

    [Fact]
    public async Task TcpMetrics_CountConnectionsAndBytes_AsIstiosStandardMetrics()
    {
        var local = Ports.Free();
        var client = await _mesh.StartSidecarAsync("tcp-metrics", new Dictionary<string, string> { ["app"] = "tcp-metrics" }, [], null, "",
            new Dictionary<string, int> { ["tcp-echo.default.svc.cluster.local:9000"] = local }, "outbound|9000||tcp-echo.default.svc.cluster.local");

        // Five connections, each "hello\n" (6 bytes) up and "one hello\n" or "two hello\n" (10 bytes) back, then closed.
        for (var i = 0; i < 5; i++)
        {
            Assert.EndsWith(" hello", await EchoAsync(local, "hello"), StringComparison.Ordinal);
        }

        // A connection is counted closed when the sidecar sees it end, just after the client closed it: wait for it.
        var url = new Uri(client.Host.StatusAddress!, "/stats/prometheus");
        using var deadline = new CancellationTokenSource(Timeouts.Long);
        var scrape = await PrometheusScrape.GetAsync(url);
        while (scrape.Sum("istio_tcp_connections_closed_total", ("reporter", "source")) < 5 && !deadline.IsCancellationRequested)
        {
            await Task.Delay(50, CancellationToken.None);
            scrape = await PrometheusScrape.GetAsync(url);
        }
        // The server by its certificate and, from its endpoint's telemetry label, its workload (v1 or v2, as balanced).
        (string, string)[] labels = [("reporter", "source"), ("source_workload", "tcp-metrics"), ("destination_service", "tcp-echo.default.svc.cluster.local"),
            ("destination_principal", "spiffe://cluster.local/ns/default/sa/tcp-echo"), ("destination_canonical_service", "tcp-echo"), ("connection_security_policy", "unknown")];
        Assert.Equal(5, scrape.Sum("istio_tcp_connections_opened_total", labels));
        Assert.Equal(5, scrape.Sum("istio_tcp_connections_closed_total", labels));
        // Istio's sense: received is what the client sent (the request), sent is what came back.
        Assert.Equal(30, scrape.Sum("istio_tcp_received_bytes_total", labels));
        Assert.Equal(50, scrape.Sum("istio_tcp_sent_bytes_total", labels));
        Assert.Equal(5, scrape.Sum("istio_tcp_connections_opened_total", [("reporter", "source"), ("source_workload", "tcp-metrics"), ("destination_workload", "tcp-echo-v1")])
            + scrape.Sum("istio_tcp_connections_opened_total", [("reporter", "source"), ("source_workload", "tcp-metrics"), ("destination_workload", "tcp-echo-v2")]));
    }

    [Fact]
    public async Task StrictTcpInbound_PlaintextFromOutsideTheMesh_NeverReachesTheApp()
    {
        var connectionsBefore = _one.Connections;
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _mesh.InboundPortOf("tcp-echo-v1")).WaitAsync(Timeouts.Short);
        var stream = client.GetStream();
        string? answer;
        try
        {
            await stream.WriteAsync("hello\n"u8.ToArray()).AsTask().WaitAsync(Timeouts.Short);
            using var reader = new StreamReader(stream);
            answer = await reader.ReadLineAsync().WaitAsync(Timeouts.Short);
        }
        catch (IOException)
        {
            answer = null;
        }

        Assert.Null(answer);
        Assert.Equal(connectionsBefore, _one.Connections);
    }

    [Fact]
    public async Task Passthrough_TheAppsOwnCertificateReachesTheClient_AndItsTlsCarriesTheBytes()
    {
        X509Certificate2? presented = null;
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _tlsPort).WaitAsync(Timeouts.Short);
        await using var tls = new SslStream(client.GetStream(), leaveInnerStreamOpen: false, (_, certificate, _, _) =>
        {
            presented = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
            return true;
        });
        await tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "nginx.example.com" }).WaitAsync(Timeouts.Short);
        await tls.WriteAsync("hello\n"u8.ToArray()).AsTask().WaitAsync(Timeouts.Short);
        using var reader = new StreamReader(tls);
        var answer = await reader.ReadLineAsync().WaitAsync(Timeouts.Short);

        Assert.Equal("nginx hello", answer);
        // The gateway did not terminate: the certificate is the app's own, not one the gateway holds.
        Assert.Equal(_nginxCertificate.Thumbprint, presented?.Thumbprint);
    }

    [Fact]
    public async Task Passthrough_AServerNameNoRouteNames_IsClosedBeforeTheHandshake()
    {
        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _tlsPort).WaitAsync(Timeouts.Short);
        await using var tls = new SslStream(client.GetStream(), leaveInnerStreamOpen: false, (_, _, _, _) => true);

        await Assert.ThrowsAnyAsync<Exception>(() => tls.AuthenticateAsClientAsync(new SslClientAuthenticationOptions { TargetHost = "other.example.com" }).WaitAsync(Timeouts.Short));
        Assert.Equal(0, _nginx.Connections);
    }
}
