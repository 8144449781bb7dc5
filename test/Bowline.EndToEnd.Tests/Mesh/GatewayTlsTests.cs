using System.Diagnostics;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.EndToEnd.Tests.Infrastructure;
using Bowline.Proxy;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>
/// Istio's "Secure Gateways" task on a real mesh: a Secret <c>httpbin-credential</c> for <c>httpbin.example.com</c>
/// signed by a root made here, a Gateway <c>mygateway</c> on 443 (HTTPS SIMPLE, credentialName) bound to httpbin by a
/// VirtualService, the gateway's certificate delivered over SDS by the control plane, and curl as the client.
/// </summary>
public sealed class GatewayTlsTests : IAsyncLifetime
{
    private readonly string _pki = Directory.CreateTempSubdirectory("bowline-gwtls-").FullName;
    private readonly int _https = Ports.Free();
    private readonly int _http = Ports.Free();
    private readonly int _mtls = Ports.Free();
    private TestBackend _backend = null!;
    private MeshHarness _mesh = null!;
    private ProxyHost _gateway = null!;
    private X509Certificate2 _root = null!;

    public async Task InitializeAsync()
    {
        using var rootKey = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var rootRequest = new CertificateRequest("O=example Inc., CN=example.com", rootKey, HashAlgorithmName.SHA256);
        rootRequest.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        rootRequest.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, true));
        _root = rootRequest.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        await File.WriteAllTextAsync(Path.Combine(_pki, "root.pem"), _root.ExportCertificatePem());
        var client = Leaf("client.example.com", clientAuth: true);
        await File.WriteAllTextAsync(Path.Combine(_pki, "client.pem"), client.Certificate);
        await File.WriteAllTextAsync(Path.Combine(_pki, "client-key.pem"), client.Key);

        _backend = await TestBackend.StartAsync("httpbin");
        _mesh = await MeshHarness.StartAsync(
            ("httpbin.yaml", MeshYaml.Service("httpbin", 8000)),
            ("httpbin-credential.yaml", Secret("httpbin-credential", Leaf("httpbin.example.com"))),
            ("helloworld-credential.yaml", Secret("helloworld-credential", Leaf("helloworld.example.com"))),
            ("httpbin-mtls-credential.yaml", Secret("httpbin-mtls-credential", Leaf("httpbin.example.com"), _root.ExportCertificatePem())),
            ("mygateway.yaml", """
                apiVersion: networking.istio.io/v1
                kind: Gateway
                metadata: {name: mygateway, namespace: default}
                spec:
                  selector: {istio: ingressgateway}
                  servers:
                  - port: {number: 443, name: https, protocol: HTTPS}
                    tls: {mode: SIMPLE, credentialName: httpbin-credential}
                    hosts: [httpbin.example.com]
                  - port: {number: 443, name: https-helloworld, protocol: HTTPS}
                    tls: {mode: SIMPLE, credentialName: helloworld-credential}
                    hosts: [helloworld.example.com]
                  - port: {number: 8443, name: https-mutual, protocol: HTTPS}
                    tls: {mode: MUTUAL, credentialName: httpbin-mtls-credential}
                    hosts: [httpbin.example.com]
                  - port: {number: 80, name: http, protocol: HTTP}
                    tls: {httpsRedirect: true}
                    hosts: [httpbin.example.com]
                """),
            ("httpbin-vs.yaml", """
                apiVersion: networking.istio.io/v1
                kind: VirtualService
                metadata: {name: httpbin, namespace: default}
                spec:
                  hosts: [httpbin.example.com, helloworld.example.com]
                  gateways: [mygateway]
                  http:
                  - route: [{destination: {host: httpbin, port: {number: 8000}}}]
                """));
        await _mesh.StartSidecarAsync("httpbin", new Dictionary<string, string> { ["app"] = "httpbin" }, [("http", 8000, _backend.Port)]);
        _gateway = ProxyHost.Create(new ProxyOptions
        {
            NodeId = "router~127.0.0.1~istio-ingressgateway.default~default.svc.cluster.local",
            WorkloadName = "istio-ingressgateway",
            Namespace = "default",
            Labels = new Dictionary<string, string> { ["istio"] = "ingressgateway" },
            Gateway = true,
            GatewayPorts = new Dictionary<int, int> { [443] = _https, [80] = _http, [8443] = _mtls },
            XdsAddress = new Uri($"http://127.0.0.1:{_mesh.XdsPort}"),
            AdminPort = 0,
            InitialBackoff = TimeSpan.FromMilliseconds(100),
            MaxBackoff = TimeSpan.FromSeconds(1),
        });
        await _gateway.StartAsync(Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        const string Cluster = "outbound|8000||httpbin.default.svc.cluster.local";
        await _gateway.Snapshots.WaitUntilAsync(s => s.Listeners.Count == 3 && s.Listeners.Values.All(l => l.IsWarm) && s.Clusters.ContainsKey(Cluster), Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        await _gateway.Snapshots.Current.Clusters[Cluster].WaitUntilAsync(c => c?.Hosts.Available.Length > 0, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        await Secrets.WaitUntilAsync(s => s.Certificate("kubernetes://httpbin-credential") is not null && s.Certificate("kubernetes://helloworld-credential") is not null
            && s.TrustBundle("kubernetes://httpbin-mtls-credential-cacert") is not null, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
    }

    public async Task DisposeAsync()
    {
        if (_gateway is not null)
        {
            await _gateway.StopAsync().Within(Timeouts.Short);
            await _gateway.DisposeAsync();
        }
        await _mesh.DisposeAsync();
        await _backend.DisposeAsync();
        Directory.Delete(_pki, recursive: true);
    }

    private Bowline.Proxy.Tls.SecretStore Secrets => (Bowline.Proxy.Tls.SecretStore)_gateway.Services.GetService(typeof(Bowline.Proxy.Tls.SecretStore))!;

    [Fact]
    public async Task Simple_CurlWithTheRoot_ReachesHttpbinOverHttps()
    {
        var (exit, output) = await CurlAsync("--cacert", Pem("root.pem"), "--resolve", $"httpbin.example.com:{_https}:127.0.0.1", $"https://httpbin.example.com:{_https}/status-if/httpbin/418");

        Assert.True(exit == 0, output);
        Assert.Equal("418", output);
    }

    [Fact]
    public async Task Simple_TwoHostsOnOnePort_EachGetsItsCertificateBySni()
    {
        // curl checks the name in the certificate, so success means SNI chose helloworld's certificate.
        var (exit, output) = await CurlAsync("--cacert", Pem("root.pem"), "--resolve", $"helloworld.example.com:{_https}:127.0.0.1", $"https://helloworld.example.com:{_https}/status-if/httpbin/418");

        Assert.True(exit == 0, output);
        Assert.Equal("418", output);
    }

    [Fact]
    public async Task Mutual_WithoutAClientCertificate_IsRefused_WithOneItServes()
    {
        var resolve = $"httpbin.example.com:{_mtls}:127.0.0.1";
        var url = $"https://httpbin.example.com:{_mtls}/status-if/httpbin/418";

        var (refused, refusal) = await CurlAsync("--cacert", Pem("root.pem"), "--resolve", resolve, url);
        var (exit, output) = await CurlAsync("--cacert", Pem("root.pem"), "--cert", Pem("client.pem"), "--key", Pem("client-key.pem"), "--resolve", resolve, url);

        Assert.True(refused != 0, $"curl without a client certificate got: {refusal}");
        Assert.True(exit == 0, output);
        Assert.Equal("418", output);
    }

    [Fact]
    public async Task HttpsRedirect_PlainHttp_Gets301ToHttps()
    {
        var (exit, output) = await CurlAsync("-w", " %{redirect_url}", "--resolve", $"httpbin.example.com:{_http}:127.0.0.1", $"http://httpbin.example.com:{_http}/status-if/httpbin/418");

        Assert.True(exit == 0, output);
        Assert.Equal("301 https://httpbin.example.com/status-if/httpbin/418", output);
    }

    [Fact]
    public async Task SecretRotation_NewCertificateServes_WithoutAListenerChange()
    {
        var listener = _gateway.Snapshots.Current.Listeners["0.0.0.0_443"];
        var before = Secrets.Certificate("kubernetes://httpbin-credential")!.Leaf.Thumbprint;

        await _mesh.WriteConfigAsync("httpbin-credential.yaml", Secret("httpbin-credential", Leaf("httpbin.example.com")));
        await Secrets.WaitUntilAsync(s => s.Certificate("kubernetes://httpbin-credential")!.Leaf.Thumbprint != before, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        var (exit, output) = await CurlAsync("--cacert", Pem("root.pem"), "--resolve", $"httpbin.example.com:{_https}:127.0.0.1", $"https://httpbin.example.com:{_https}/status-if/httpbin/418");

        Assert.True(exit == 0, output);
        Assert.Equal("418", output);
        Assert.Same(listener, _gateway.Snapshots.Current.Listeners["0.0.0.0_443"]);
    }

    private string Pem(string file) => Path.Combine(_pki, file);

    /// <summary>Runs curl (no proxy, bounded) and returns its exit code and what it wrote: the status code, then whatever <c>-w</c> adds.</summary>
    private static async Task<(int Exit, string Output)> CurlAsync(params string[] args)
    {
        var info = new ProcessStartInfo("curl") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        // -HHost:<name> as Istio's task writes it: the gateway binds its declared ports elsewhere here, and its routes
        // match the host name (or name:declared port), not the port curl dialed.
        var url = new Uri(args[^1]);
        foreach (var arg in new[] { "-sS", "--noproxy", "*", "--max-time", "10", "-o", "/dev/null", "-H", $"Host:{url.Host}", "-w", "%{http_code}" }.Concat(args))
        {
            info.ArgumentList.Add(arg);
        }
        // Two -w: curl keeps the last, so the status code is prepended to a caller's format.
        var custom = Array.IndexOf(args, "-w");
        if (custom >= 0)
        {
            var index = info.ArgumentList.IndexOf(args[custom + 1]);
            info.ArgumentList[index] = "%{http_code}" + args[custom + 1];
        }
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync(Timeouts.Token(Timeouts.Short));
        var output = (await stdout).Trim();
        return (process.ExitCode, process.ExitCode == 0 ? output : $"{output} {(await stderr).Trim()}");
    }

    private (string Certificate, string Key) Leaf(string dnsName, bool clientAuth = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest($"O=example organization, CN={dnsName}", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddDnsName(dnsName);
        request.CertificateExtensions.Add(san.Build());
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(clientAuth ? "1.3.6.1.5.5.7.3.2" : "1.3.6.1.5.5.7.3.1")], false));
        using var leaf = request.Create(_root, DateTimeOffset.UtcNow.AddMinutes(-5), DateTimeOffset.UtcNow.AddDays(1), RandomNumberGenerator.GetBytes(16).Select((b, i) => i == 0 ? (byte)(b & 0x7F) : b).ToArray());
        return (leaf.ExportCertificatePem(), key.ExportPkcs8PrivateKeyPem());
    }

    /// <summary>What <c>kubectl create secret tls ... </c> (or <c>generic --from-file=tls.crt,tls.key,ca.crt</c> for MUTUAL) writes.</summary>
    private static string Secret(string name, (string Certificate, string Key) leaf, string? ca = null) =>
        $"apiVersion: v1\nkind: Secret\nmetadata: {{name: {name}, namespace: default}}\ntype: {(ca is null ? "kubernetes.io/tls" : "Opaque")}\ndata:\n"
        + $"  tls.crt: {B64(leaf.Certificate)}\n  tls.key: {B64(leaf.Key)}\n" + (ca is null ? "" : $"  ca.crt: {B64(ca)}\n");

    private static string B64(string text) => Convert.ToBase64String(System.Text.Encoding.UTF8.GetBytes(text));
}
