using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Envoy.Config.Core.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using Listener = Envoy.Config.Listener.V3.Listener;

namespace Bowline.Proxy.Tests.Listeners;

/// <summary>
/// The connection-level seam over real sockets and real TLS: listener filters read the first bytes, filter_chain_match
/// picks mTLS or cleartext on one port (Istio's PERMISSIVE), the TLS chain verifies the client's X.509-SVID against
/// the trust bundle from the secret store, and STRICT (no cleartext chain) closes plaintext connections.
/// </summary>
public sealed class ConnectionAcceptorTests : IAsyncLifetime
{
    private static readonly X509Certificate2 Root = TestPki.Root();
    private static readonly X509Certificate2 ServerLeaf = TestPki.Leaf(Root, [TestPki.Spiffe("reviews")]);
    private static readonly X509Certificate2 ClientLeaf = TestPki.Leaf(Root, [TestPki.Spiffe("productpage")]);

    private readonly CompilerHarness _compiler = new();
    private readonly SecretStore _secrets = new();
    private readonly int _port = Ports.Free();
    private ServiceProvider? _services;
    private ListenerServer? _server;

    public async Task InitializeAsync()
    {
        _secrets.SetCertificate("default", new CertificateSecret(ServerLeaf, []));
        _secrets.SetTrustBundle("ROOTCA", [Root]);
        _services = new ServiceCollection().AddSingleton(_secrets).BuildServiceProvider();
        await Task.CompletedTask;
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.StopAsync(new CancellationTokenSource(Timeouts.Default).Token);
            await _server.DisposeAsync();
        }
        _services?.Dispose();
        _compiler.Dispose();
    }

    private async Task StartAsync(bool permissive)
    {
        var listener = new Listener
        {
            Name = "virtualInbound",
            Address = SocketAddress("127.0.0.1", _port),
            ListenerFilters =
            {
                new ListenerFilter { Name = "envoy.filters.listener.tls_inspector", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector()) },
                new ListenerFilter { Name = "envoy.filters.listener.http_inspector", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.HttpInspector.V3.HttpInspector()) },
            },
            FilterChains = { MtlsChain() },
        };
        if (permissive)
        {
            listener.FilterChains.Add(Chain("plaintext", new FilterChainMatch { TransportProtocol = "raw_buffer", ApplicationProtocols = { "http/1.1", "h2c" } }, "plaintext"));
        }
        var compiled = _compiler.Compile(listener).Listeners["virtualInbound"];
        _server = await _compiler.ServeAsync(compiled, _services!);
    }

    private static FilterChain MtlsChain()
    {
        var chain = Chain("mtls", new FilterChainMatch { TransportProtocol = "tls", ApplicationProtocols = { "istio", "istio-http/1.1", "istio-h2" } }, "mtls");
        var sds = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 };
        var tls = new DownstreamTlsContext
        {
            RequireClientCertificate = true,
            CommonTlsContext = new CommonTlsContext
            {
                TlsCertificateSdsSecretConfigs = { new SdsSecretConfig { Name = "default", SdsConfig = sds } },
                CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
                {
                    DefaultValidationContext = new CertificateValidationContext
                    {
                        MatchTypedSubjectAltNames = { new SubjectAltNameMatcher { SanType = SubjectAltNameMatcher.Types.SanType.Uri, Matcher = new Envoy.Type.Matcher.V3.StringMatcher { Prefix = "spiffe://cluster.local/" } } },
                    },
                    ValidationContextSdsSecretConfig = new SdsSecretConfig { Name = "ROOTCA", SdsConfig = sds },
                },
            },
        };
        chain.TransportSocket = new TransportSocket { Name = "envoy.transport_sockets.tls", TypedConfig = Any.Pack(tls) };
        return chain;
    }

    /// <summary>A chain whose only route answers <paramref name="body"/> itself, so the answer says which chain served.</summary>
    private static FilterChain Chain(string name, FilterChainMatch match, string body)
    {
        var hcm = new HttpConnectionManager
        {
            StatPrefix = name,
            RouteConfig = RouteConfig(name, VirtualHost("all", ["*"], new Route
            {
                Match = Prefix("/"),
                DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { InlineString = body } },
            })),
        };
        hcm.HttpFilters.Add(RouterFilter());
        return new FilterChain { Name = name, FilterChainMatch = match, Filters = { HttpConnectionManagerFilter(hcm) } };
    }

    private HttpClient TlsClient(X509Certificate2? clientCertificate, string alpn, bool http2 = false) => new(new SocketsHttpHandler
    {
        ConnectCallback = async (context, cancellationToken) =>
        {
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            await socket.ConnectAsync(IPAddress.Loopback, _port, cancellationToken);
            var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
            var options = new SslClientAuthenticationOptions
            {
                TargetHost = "reviews.default.svc.cluster.local",
                ApplicationProtocols = [new SslApplicationProtocol(alpn)],
                ClientCertificates = clientCertificate is null ? null : [clientCertificate],
                RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && ((X509Certificate2)certificate).Issuer == Root.Subject,
            };
            await ssl.AuthenticateAsClientAsync(options, cancellationToken);
            return ssl;
        },
    })
    {
        Timeout = Timeouts.Default,
        DefaultRequestVersion = http2 ? HttpVersion.Version20 : HttpVersion.Version11,
        DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
    };

    private string Url => $"http://127.0.0.1:{_port}/";

    private long Stat(string name) => _compiler.Stats.ValueOf($"listener.127.0.0.1_{_port}.{name}");

    [Fact]
    public async Task Permissive_MeshMtlsAndPlaintextOnOnePort_EachGetsItsChain()
    {
        await StartAsync(permissive: true);
        using var mtls = TlsClient(ClientLeaf, "istio-http/1.1");
        using var plain = new HttpClient { Timeout = Timeouts.Default };

        Assert.Equal("mtls", await mtls.GetStringAsync(Url));
        Assert.Equal("plaintext", await plain.GetStringAsync(Url));
        Assert.Equal(1, Stat("ssl.handshake"));
    }

    [Fact]
    public async Task Mtls_Http2InsideTheTunnel_IsDetectedFromThePreface()
    {
        await StartAsync(permissive: false);
        using var mtls = TlsClient(ClientLeaf, "istio-h2", http2: true);

        using var response = await mtls.GetAsync(Url);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("mtls", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Permissive_H2cPriorKnowledge_GetsThePlaintextChain()
    {
        await StartAsync(permissive: true);
        using var h2c = new HttpClient { Timeout = Timeouts.Default, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };

        using var response = await h2c.GetAsync(Url);

        Assert.Equal(HttpVersion.Version20, response.Version);
        Assert.Equal("plaintext", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task Strict_PlaintextClient_IsRefused()
    {
        await StartAsync(permissive: false);
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, _port);

        var answer = await RawRequestAsync(new NetworkStream(socket, ownsSocket: false));

        Assert.Equal("", answer);
        Assert.Equal(1, Stat("no_filter_chain_match"));
    }

    /// <summary>One HTTP/1.1 request on a connection the test opened (no client retries), and what came back before the close.</summary>
    private static async Task<string> RawRequestAsync(Stream stream)
    {
        try
        {
            await stream.WriteAsync("GET / HTTP/1.1\r\nHost: reviews\r\nConnection: close\r\n\r\n"u8.ToArray(), Timeouts.Token());
            using var reader = new StreamReader(stream);
            return await reader.ReadToEndAsync(Timeouts.Token());
        }
        catch (IOException)
        {
            return "";
        }
    }

    public static TheoryData<string, string> BadClients => new()
    {
        { "no certificate", "ssl.fail_verify_no_cert" },
        { "two URI SANs", "ssl.fail_verify_error" },
        { "CA certificate", "ssl.fail_verify_error" },
        { "another root", "ssl.fail_verify_error" },
        { "expired", "ssl.fail_verify_error" },
        { "server-only key usage", "ssl.fail_verify_error" },
        { "other trust domain", "ssl.fail_verify_san" },
    };

    [Theory]
    [MemberData(nameof(BadClients))]
    public async Task Strict_BadClientCertificate_FailsTheHandshakeAndIsCounted(string kind, string stat)
    {
        await StartAsync(permissive: false);
        var certificate = kind switch
        {
            "no certificate" => null,
            "two URI SANs" => TestPki.Leaf(Root, [TestPki.Spiffe("productpage"), TestPki.Spiffe("admin")]),
            "CA certificate" => TestPki.Leaf(Root, [TestPki.Spiffe("productpage")], ca: true),
            "another root" => TestPki.Leaf(TestPki.Root("Impostor Root"), [TestPki.Spiffe("productpage")]),
            "expired" => TestPki.Leaf(Root, [TestPki.Spiffe("productpage")], validFor: TimeSpan.FromMinutes(1)),
            "server-only key usage" => TestPki.Leaf(Root, [TestPki.Spiffe("productpage")], clientAuth: false),
            "other trust domain" => TestPki.Leaf(Root, [TestPki.Spiffe("productpage", trustDomain: "evil.example")]),
            _ => throw new ArgumentOutOfRangeException(nameof(kind)),
        };
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Loopback, _port);
        using var ssl = new SslStream(new NetworkStream(socket, ownsSocket: false));

        // TLS 1.3 reports a refused client certificate after the client's side of the handshake: either step fails.
        var answer = "";
        try
        {
            await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
            {
                TargetHost = "reviews",
                ApplicationProtocols = [new SslApplicationProtocol("istio-http/1.1")],
                ClientCertificates = certificate is null ? null : [certificate],
                RemoteCertificateValidationCallback = (_, _, _, _) => true,
            }, Timeouts.Token());
            answer = await RawRequestAsync(ssl);
        }
        catch (AuthenticationException)
        {
        }

        Assert.Equal("", answer);
        Assert.Equal(1, Stat(stat));
        Assert.Equal(0, Stat("ssl.handshake"));
    }

    [Fact]
    public async Task RotatedServerCertificate_IsPresentedToTheNextConnection()
    {
        await StartAsync(permissive: false);
        using var first = TlsClient(ClientLeaf, "istio-http/1.1");
        Assert.Equal("mtls", await first.GetStringAsync(Url));

        var rotated = TestPki.Leaf(Root, [TestPki.Spiffe("reviews")]);
        _secrets.SetCertificate("default", new CertificateSecret(rotated, []));
        X509Certificate2? seen = null;
        using var second = new HttpClient(new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
                await socket.ConnectAsync(IPAddress.Loopback, _port, cancellationToken);
                var ssl = new SslStream(new NetworkStream(socket, ownsSocket: true));
                await ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
                {
                    TargetHost = "reviews",
                    ApplicationProtocols = [new SslApplicationProtocol("istio")],
                    ClientCertificates = [ClientLeaf],
                    RemoteCertificateValidationCallback = (_, certificate, _, _) => (seen = certificate as X509Certificate2) is not null,
                }, cancellationToken);
                return ssl;
            },
        }) { Timeout = Timeouts.Default };

        Assert.Equal("mtls", await second.GetStringAsync(Url));
        Assert.Equal(rotated.SerialNumber, seen!.SerialNumber);
        // The first connection is still open and still served.
        Assert.Equal("mtls", await first.GetStringAsync(Url));
    }
}
