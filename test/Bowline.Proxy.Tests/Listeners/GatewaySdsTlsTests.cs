using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Bowline.Proxy.Xds;
using Bowline.Xds;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using Listener = Envoy.Config.Listener.V3.Listener;

namespace Bowline.Proxy.Tests.Listeners;

/// <summary>
/// A gateway's HTTPS listener as the control plane sends it (one chain per server, by SNI, each naming its credential
/// <c>kubernetes://&lt;name&gt;</c> over ADS), with the secrets arriving over SDS through the real applier, and real
/// TLS handshakes on a real socket.
/// </summary>
public sealed class GatewaySdsTlsTests : IAsyncDisposable
{
    private static readonly X509Certificate2 Root = TestPki.Root("Gateway Test Root");
    private static readonly X509Certificate2 HttpbinLeaf = TestPki.Leaf(Root, [], dnsNames: ["httpbin.example.com"]);
    private static readonly X509Certificate2 HelloLeaf = TestPki.Leaf(Root, [], dnsNames: ["helloworld.example.com"]);
    private static readonly X509Certificate2 ClientLeaf = TestPki.Leaf(Root, [], dnsNames: ["client.example.com"]);

    private readonly int _port = Ports.Free();
    private readonly ProxyHost _host = ProxyHost.Create(new ProxyOptions
    {
        NodeId = "router~127.0.0.1~gateway.istio-system~istio-system.svc.cluster.local",
        WorkloadName = "gateway",
        XdsAddress = new Uri("http://127.0.0.1:1"),
        AdminPort = 0,
    }, random: new Random(42));

    private ConfigApplier Applier => _host.Services.GetRequiredService<ConfigApplier>();

    private SecretStore Secrets => _host.Services.GetRequiredService<SecretStore>();

    public async ValueTask DisposeAsync()
    {
        await _host.Services.GetRequiredService<Bowline.Proxy.Listeners.ListenerManager>().DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        await _host.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
    }

    private static SdsSecretConfig Ads(string name) => new() { Name = name, SdsConfig = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 } };

    /// <summary>A chain for <paramref name="host"/> answering its own name, terminating TLS with <c>kubernetes://credential</c>.</summary>
    private static FilterChain HttpsChain(string host, string credential, bool mutual = false)
    {
        var hcm = new HttpConnectionManager
        {
            StatPrefix = host,
            RouteConfig = RouteConfig(host, VirtualHost("all", ["*"], new Route { Match = Prefix("/"), DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { InlineString = host } } })),
        };
        hcm.HttpFilters.Add(RouterFilter());
        var tls = new DownstreamTlsContext
        {
            RequireClientCertificate = mutual,
            CommonTlsContext = new CommonTlsContext { AlpnProtocols = { "h2", "http/1.1" }, TlsCertificateSdsSecretConfigs = { Ads($"kubernetes://{credential}") } },
        };
        if (mutual)
        {
            tls.CommonTlsContext.CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
            {
                DefaultValidationContext = new CertificateValidationContext(),
                ValidationContextSdsSecretConfig = Ads($"kubernetes://{credential}-cacert"),
            };
        }
        return new FilterChain
        {
            Name = host,
            FilterChainMatch = new FilterChainMatch { ServerNames = { host } },
            TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(tls) },
            Filters = { HttpConnectionManagerFilter(hcm) },
        };
    }

    private Task<string?> ApplyListenerAsync(params FilterChain[] chains)
    {
        var listener = new Listener
        {
            Name = "0.0.0.0_443",
            Address = SocketAddress("127.0.0.1", _port),
            ListenerFilters = { new ListenerFilter { Name = "envoy.filters.listener.tls_inspector", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector()) } },
        };
        listener.FilterChains.AddRange(chains);
        return ApplyAsync(TypeUrls.Listener, "l1", listener);
    }

    private Task<string?> ApplyAsync(string typeUrl, string version, params IMessage[] resources) =>
        Applier.ApplyAsync(typeUrl, resources.Select(Any.Pack).ToList(), version, Timeouts.Token());

    private static Secret Certificate(string name, X509Certificate2 leaf) => new()
    {
        Name = name,
        TlsCertificate = new TlsCertificate
        {
            CertificateChain = new DataSource { InlineBytes = ByteString.CopyFromUtf8(leaf.ExportCertificatePem()) },
            PrivateKey = new DataSource { InlineBytes = ByteString.CopyFromUtf8(leaf.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem()) },
        },
    };

    private static Secret Bundle(string name, X509Certificate2 root) => new()
    {
        Name = name,
        ValidationContext = new CertificateValidationContext { TrustedCa = new DataSource { InlineBytes = ByteString.CopyFromUtf8(root.ExportCertificatePem()) } },
    };

    /// <summary>Connects with SNI <paramref name="host"/>, trusting only the test root; the server's certificate and the chain's answer, or the failure.</summary>
    private async Task<(X509Certificate2? Server, string? Body, Exception? Error)> GetAsync(string host, X509Certificate2? clientCertificate = null)
    {
        X509Certificate2? presented = null;
        using var client = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
                await socket.ConnectAsync(IPAddress.Loopback, _port, cancellationToken);
                var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = host,
                    ApplicationProtocols = [SslApplicationProtocol.Http11],
                    ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                    CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { Root }, RevocationMode = X509RevocationMode.NoCheck },
                }, cancellationToken);
                presented = new X509Certificate2(ssl.RemoteCertificate!);
                return ssl;
            },
        })
        { Timeout = Timeouts.Default };
        try
        {
            var body = await client.GetStringAsync($"https://{host}/");
            return (presented, body, null);
        }
        catch (HttpRequestException e)
        {
            return (presented, null, e);
        }
    }

    private long Stat(string name) => _host.Stats.ValueOf($"listener.127.0.0.1_{_port}.{name}");

    [Fact]
    public async Task SdsSecrets_TwoHostsOnOnePort_SniPicksEachHostsCertificate()
    {
        Assert.Null(await ApplyListenerAsync(HttpsChain("httpbin.example.com", "httpbin-credential"), HttpsChain("helloworld.example.com", "helloworld-credential")));
        Assert.Equal(["kubernetes://helloworld-credential", "kubernetes://httpbin-credential"], Applier.SecretDependencies().Order(StringComparer.Ordinal));

        Assert.Null(await ApplyAsync(TypeUrls.Secret, "s1", Certificate("kubernetes://httpbin-credential", HttpbinLeaf), Certificate("kubernetes://helloworld-credential", HelloLeaf)));

        var httpbin = await GetAsync("httpbin.example.com");
        var hello = await GetAsync("helloworld.example.com");
        Assert.Equal(("httpbin.example.com", HttpbinLeaf.Thumbprint), (httpbin.Body, httpbin.Server!.Thumbprint));
        Assert.Equal(("helloworld.example.com", HelloLeaf.Thumbprint), (hello.Body, hello.Server!.Thumbprint));
        Assert.Equal("s1", Applier.VersionOf(TypeUrls.Secret));
    }

    [Fact]
    public async Task SecretNotArrived_HandshakeIsRefusedAndCounted_ThenServesOnceItArrives()
    {
        await ApplyListenerAsync(HttpsChain("httpbin.example.com", "httpbin-credential"));

        var before = await GetAsync("httpbin.example.com");
        Assert.NotNull(before.Error);
        Assert.Equal(1, Stat("ssl.secret_not_ready"));

        await ApplyAsync(TypeUrls.Secret, "s1", Certificate("kubernetes://httpbin-credential", HttpbinLeaf));
        Assert.Equal("httpbin.example.com", (await GetAsync("httpbin.example.com")).Body);
    }

    [Fact]
    public async Task Mutual_ClientWithoutACertificate_IsRefused_WithOneFromTheCaServes()
    {
        await ApplyListenerAsync(HttpsChain("httpbin.example.com", "httpbin-credential", mutual: true));
        await ApplyAsync(TypeUrls.Secret, "s1", Certificate("kubernetes://httpbin-credential", HttpbinLeaf), Bundle("kubernetes://httpbin-credential-cacert", Root));

        var known = await GetAsync("httpbin.example.com", ClientLeaf);
        // One connection each, no client retries: with TLS 1.3 the client learns of the refusal only when it reads.
        var anonymous = await RefusedAsync(null);
        var stranger = await RefusedAsync(TestPki.Leaf(TestPki.Root("Other Root"), [], dnsNames: ["client.example.com"]));

        Assert.Equal("httpbin.example.com", known.Body);
        Assert.True(anonymous);
        Assert.Equal(1, Stat("ssl.fail_verify_no_cert"));
        Assert.True(stranger);
        Assert.Equal(1, Stat("ssl.fail_verify_error"));
    }

    /// <summary>Whether a connection presenting <paramref name="certificate"/> gets no HTTP answer.</summary>
    private async Task<bool> RefusedAsync(X509Certificate2? certificate)
    {
        try
        {
            await using var ssl = await OpenAsync("httpbin.example.com", certificate);
            return !(await RequestAsync(ssl)).Contains("200 OK", StringComparison.Ordinal);
        }
        catch (Exception e) when (e is IOException or System.Security.Authentication.AuthenticationException)
        {
            return true;
        }
    }

    [Fact]
    public async Task Rotation_NewConnectionsGetTheNewCertificate_AnOpenOneKeepsWorking()
    {
        await ApplyListenerAsync(HttpsChain("httpbin.example.com", "httpbin-credential"));
        await ApplyAsync(TypeUrls.Secret, "s1", Certificate("kubernetes://httpbin-credential", HttpbinLeaf));
        var first = await OpenAsync("httpbin.example.com");
        var rotated = TestPki.Leaf(Root, [], dnsNames: ["httpbin.example.com"]);
        var listenerVersion = _host.Snapshots.Current.Listeners["0.0.0.0_443"];

        Assert.Null(await ApplyAsync(TypeUrls.Secret, "s2", Certificate("kubernetes://httpbin-credential", rotated)));

        Assert.Same(listenerVersion, _host.Snapshots.Current.Listeners["0.0.0.0_443"]);
        Assert.Equal(rotated.Thumbprint, (await GetAsync("httpbin.example.com")).Server!.Thumbprint);
        // The connection opened before the rotation still carries requests.
        Assert.Contains("200 OK", await RequestAsync(first), StringComparison.Ordinal);
        await first.DisposeAsync();
    }

    [Fact]
    public async Task BadPem_IsANackNamingTheSecret_AndTheStoreKeepsItsSecret()
    {
        await ApplyListenerAsync(HttpsChain("httpbin.example.com", "httpbin-credential"));
        await ApplyAsync(TypeUrls.Secret, "s1", Certificate("kubernetes://httpbin-credential", HttpbinLeaf));
        var broken = Certificate("kubernetes://httpbin-credential", HelloLeaf);
        broken.TlsCertificate.PrivateKey.InlineBytes = ByteString.CopyFromUtf8(HttpbinLeaf.GetECDsaPrivateKey()!.ExportPkcs8PrivateKeyPem());

        var error = await ApplyAsync(TypeUrls.Secret, "s2", broken);

        Assert.StartsWith("SDS secret kubernetes://httpbin-credential tls_certificate: the certificate chain and private key do not load", error, StringComparison.Ordinal);
        Assert.Equal("s1", Applier.VersionOf(TypeUrls.Secret));
        Assert.Equal(HttpbinLeaf.Thumbprint, Secrets.Certificate("kubernetes://httpbin-credential")!.Leaf.Thumbprint);
    }

    [Fact]
    public async Task SecretsOfTheAgent_CannotBeReplacedOverAds()
    {
        var error = await ApplyAsync(TypeUrls.Secret, "s1", Certificate("default", HttpbinLeaf));

        Assert.StartsWith("SDS secret default: this name belongs to the proxy's own agent", error, StringComparison.Ordinal);
        Assert.Null(Secrets.Certificate("default"));
    }

    [Fact]
    public async Task SecretNoListenerNamesAnyMore_IsDropped()
    {
        await ApplyListenerAsync(HttpsChain("httpbin.example.com", "httpbin-credential"), HttpsChain("helloworld.example.com", "helloworld-credential"));
        await ApplyAsync(TypeUrls.Secret, "s1", Certificate("kubernetes://httpbin-credential", HttpbinLeaf), Certificate("kubernetes://helloworld-credential", HelloLeaf));

        await ApplyListenerAsync(HttpsChain("httpbin.example.com", "httpbin-credential"));

        Assert.NotNull(Secrets.Certificate("kubernetes://httpbin-credential"));
        Assert.Null(Secrets.Certificate("kubernetes://helloworld-credential"));
    }

    private async Task<SslStream> OpenAsync(string host, X509Certificate2? clientCertificate = null)
    {
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, _port);
        var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
        await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = host,
            ApplicationProtocols = [SslApplicationProtocol.Http11],
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            CertificateChainPolicy = new X509ChainPolicy { TrustMode = X509ChainTrustMode.CustomRootTrust, CustomTrustStore = { Root }, RevocationMode = X509RevocationMode.NoCheck },
        }, Timeouts.Token());
        return ssl;
    }

    private static async Task<string> RequestAsync(SslStream ssl)
    {
        await ssl.WriteAsync("GET / HTTP/1.1\r\nHost: httpbin.example.com\r\nConnection: close\r\n\r\n"u8.ToArray(), Timeouts.Token());
        using var reader = new StreamReader(ssl, leaveOpen: true);
        return await reader.ReadToEndAsync(Timeouts.Token());
    }
}
