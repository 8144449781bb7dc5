using System.Net;
using System.Net.Sockets;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.TcpProxy.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using Listener = Envoy.Config.Listener.V3.Listener;

namespace Bowline.Proxy.Tests.Filters.Network;

/// <summary>Envoy's tcp_proxy over real sockets: bytes both ways with half-close, server-first protocols, connect failures, and its NACKs.</summary>
public sealed class TcpProxyTests : IAsyncLifetime
{
    private const string Cluster = "outbound|3306||mysql.default.svc.cluster.local";

    private readonly CompilerHarness _compiler = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddSingleton(new SecretStore()).BuildServiceProvider();
    private readonly int _port = Ports.Free();
    private ListenerServer? _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.StopAsync(Timeouts.Token());
            await _server.DisposeAsync();
        }
        await _services.DisposeAsync();
        _compiler.Dispose();
    }

    private static Listener TcpListener(int port, TcpProxy proxy) =>
        Listener("0.0.0.0_3306", port, "127.0.0.1", new Filter { Name = "envoy.filters.network.tcp_proxy", TypedConfig = Any.Pack(proxy) });

    private async Task StartAsync(int upstreamPort, TcpProxy? proxy = null)
    {
        proxy ??= new TcpProxy { StatPrefix = Cluster, Cluster = Cluster };
        var snapshot = _compiler.Compile(TcpListener(_port, proxy), EdsCluster(Cluster), Endpoints(Cluster, ("127.0.0.1", upstreamPort, 1)));
        _server = await _compiler.ServeAsync(snapshot.Listeners["0.0.0.0_3306"], _services);
    }

    private long Stat(string name) => _compiler.Stats.Get(name).Value;

    private static async Task<byte[]> ReadToEndAsync(NetworkStream stream)
    {
        using var all = new MemoryStream();
        await stream.CopyToAsync(all).WaitAsync(Timeouts.Default);
        return all.ToArray();
    }

    [Fact]
    public async Task Echo_BytesBothWays_ClientHalfCloseReachesUpstream_CountedPerDirection()
    {
        using var upstream = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        // The upstream echoes until the client's FIN arrives, then answers "bye" and closes: only a passed-on half-close ends it.
        var serve = Task.Run(async () =>
        {
            using var accepted = await upstream.AcceptTcpClientAsync();
            var stream = accepted.GetStream();
            await stream.CopyToAsync(stream);
            await stream.WriteAsync("bye"u8.ToArray());
        });
        await StartAsync(((IPEndPoint)upstream.LocalEndpoint).Port);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _port).WaitAsync(Timeouts.Default);
        var payload = new byte[100_000];
        new Random(7).NextBytes(payload);
        var reading = ReadToEndAsync(client.GetStream());
        await client.GetStream().WriteAsync(payload).AsTask().WaitAsync(Timeouts.Default);
        // Often before the proxy's upstream connect has finished: a half-close must not abandon the connect (it did,
        // when the connect was bound to Kestrel's ConnectionClosed, which fires on the client's FIN).
        client.Client.Shutdown(SocketShutdown.Send);

        var received = await reading;
        await serve.WaitAsync(Timeouts.Default);
        Assert.Equal([.. payload, .. "bye"u8.ToArray()], received);
        Assert.Equal(1, Stat($"tcp.{Cluster}.downstream_cx_total"));
        Assert.Equal(100_000, Stat($"tcp.{Cluster}.downstream_cx_rx_bytes_total"));
        Assert.Equal(100_003, Stat($"tcp.{Cluster}.downstream_cx_tx_bytes_total"));
        Assert.Equal(1, Stat($"cluster.{Cluster}.upstream_cx_total"));
    }

    [Fact]
    public async Task ServerFirstProtocol_BannerReachesAClientThatHasSentNothing()
    {
        using var upstream = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        var serve = Task.Run(async () =>
        {
            using var accepted = await upstream.AcceptTcpClientAsync();
            var stream = accepted.GetStream();
            await stream.WriteAsync("220 mail.example.com ESMTP\r\n"u8.ToArray());
            await stream.CopyToAsync(Stream.Null);
        });
        await StartAsync(((IPEndPoint)upstream.LocalEndpoint).Port);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _port).WaitAsync(Timeouts.Default);
        var buffer = new byte[64];
        var read = await client.GetStream().ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default);

        Assert.Equal("220 mail.example.com ESMTP\r\n", System.Text.Encoding.ASCII.GetString(buffer, 0, read));
        client.Client.Shutdown(SocketShutdown.Send);
        await serve.WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task ServerFirstProtocol_InspectorsDisabledForThePort_BannerArrivesWithoutAClientByte()
    {
        using var upstream = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        var serve = Task.Run(async () =>
        {
            using var accepted = await upstream.AcceptTcpClientAsync();
            var stream = accepted.GetStream();
            await stream.WriteAsync("* OK IMAP4rev1 ready\r\n"u8.ToArray());
            await stream.CopyToAsync(Stream.Null);
        });
        // As the control plane writes a DISABLE TCP port: both inspectors on the listener, both off for this port.
        var disabled = new ListenerFilterChainMatchPredicate { DestinationPortRange = new Envoy.Type.V3.Int32Range { Start = _port, End = _port + 1 } };
        var listener = TcpListener(_port, new TcpProxy { StatPrefix = Cluster, Cluster = Cluster });
        listener.ListenerFilters.Add(new ListenerFilter { Name = "envoy.filters.listener.tls_inspector", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector()), FilterDisabled = disabled });
        listener.ListenerFilters.Add(new ListenerFilter { Name = "envoy.filters.listener.http_inspector", TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.HttpInspector.V3.HttpInspector()), FilterDisabled = disabled.Clone() });
        var snapshot = _compiler.Compile(listener, EdsCluster(Cluster), Endpoints(Cluster, ("127.0.0.1", ((IPEndPoint)upstream.LocalEndpoint).Port, 1)));
        _server = await _compiler.ServeAsync(snapshot.Listeners["0.0.0.0_3306"], _services);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _port).WaitAsync(Timeouts.Default);
        var buffer = new byte[64];
        var read = await client.GetStream().ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default);

        Assert.Equal("* OK IMAP4rev1 ready\r\n", System.Text.Encoding.ASCII.GetString(buffer, 0, read));
        client.Client.Shutdown(SocketShutdown.Send);
        await serve.WaitAsync(Timeouts.Default);
    }

    [Fact]
    public void Compile_FilterDisabledWithAnEmptyPortRange_IsNacked()
    {
        var listener = TcpListener(_port, new TcpProxy { StatPrefix = "p", Cluster = "c" });
        listener.ListenerFilters.Add(new ListenerFilter
        {
            Name = "envoy.filters.listener.tls_inspector",
            TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector()),
            FilterDisabled = new ListenerFilterChainMatchPredicate { DestinationPortRange = new Envoy.Type.V3.Int32Range { Start = 10, End = 10 } },
        });

        Assert.Contains("filter_disabled: destination_port_range [10, 10) is empty", Assert.Throws<ProxyConfigException>(() => _compiler.Compile(listener, EdsCluster("c"))).Message, StringComparison.Ordinal);
    }

    private static Envoy.Config.Accesslog.V3.AccessLog TcpLog(string path) => new()
    {
        Name = "envoy.access_loggers.file",
        TypedConfig = Any.Pack(new Envoy.Extensions.AccessLoggers.File.V3.FileAccessLog
        {
            Path = path,
            LogFormat = new Envoy.Config.Core.V3.SubstitutionFormatString { TextFormatSource = new Envoy.Config.Core.V3.DataSource { InlineString = "%UPSTREAM_CLUSTER% %UPSTREAM_HOST% %BYTES_RECEIVED% %BYTES_SENT% %RESPONSE_FLAGS% %REQ(:PATH)% %PROTOCOL%\n" } },
        }),
    };

    [Fact]
    public async Task AccessLog_OneLinePerConnection_WithItsBytesAndUpstream_AndNoRequestFields()
    {
        using var upstream = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        var upstreamPort = ((IPEndPoint)upstream.LocalEndpoint).Port;
        var serve = Task.Run(async () =>
        {
            using var accepted = await upstream.AcceptTcpClientAsync();
            var stream = accepted.GetStream();
            await stream.CopyToAsync(stream);
        });
        var path = Path.Combine(Path.GetTempPath(), $"bowline-tcp-{Guid.NewGuid():N}.log");
        var proxy = new TcpProxy { StatPrefix = Cluster, Cluster = Cluster, AccessLog = { TcpLog(path) } };
        await StartAsync(upstreamPort, proxy);

        using (var client = new TcpClient())
        {
            await client.ConnectAsync(IPAddress.Loopback, _port).WaitAsync(Timeouts.Default);
            var reading = ReadToEndAsync(client.GetStream());
            await client.GetStream().WriteAsync("hello"u8.ToArray()).AsTask().WaitAsync(Timeouts.Default);
            client.Client.Shutdown(SocketShutdown.Send);
            Assert.Equal("hello"u8.ToArray(), await reading);
        }
        await serve.WaitAsync(Timeouts.Default);
        // The session logs once both sides are done, which may be just after the client saw its EOF: stopping the
        // listener waits for its connections to end, so the line is buffered by then.
        await _server!.StopAsync(Timeouts.Token());
        await _server.DisposeAsync();
        _server = null;
        await _compiler.AccessLogs.Get(path).FlushAsync().WaitAsync(Timeouts.Default);

        Assert.Equal([$"{Cluster} 127.0.0.1:{upstreamPort} 5 5 - - -"], File.ReadAllLines(path));
        File.Delete(path);
    }

    [Fact]
    public async Task UpstreamRefusesConnection_DownstreamClosed_ConnectFailureCounted()
    {
        await StartAsync(Ports.Free());

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _port).WaitAsync(Timeouts.Default);
        var received = await ReadToEndAsync(client.GetStream());

        Assert.Empty(received);
        Assert.Equal(1, Stat($"cluster.{Cluster}.upstream_cx_connect_fail"));
        Assert.Equal(1, Stat($"tcp.{Cluster}.upstream_connect_attempts_exceeded"));
    }

    [Fact]
    public void Compile_WeightedClusters_PickByWeight()
    {
        var proxy = new TcpProxy
        {
            StatPrefix = "split",
            WeightedClusters = new TcpProxy.Types.WeightedCluster { Clusters = { new TcpProxy.Types.WeightedCluster.Types.ClusterWeight { Name = "a", Weight = 3 }, new TcpProxy.Types.WeightedCluster.Types.ClusterWeight { Name = "b", Weight = 1 } } },
        };
        var snapshot = _compiler.Compile(TcpListener(_port, proxy), EdsCluster("a"), EdsCluster("b"));
        var tcp = snapshot.Listeners["0.0.0.0_3306"].FilterChains.All.Single().Tcp!;

        var picks = Enumerable.Range(0, 4000).Select(_ => tcp.Pick().Name).ToList();
        // Seeded Random(42) in the harness: deterministic; 3:1 within a wide band.
        Assert.InRange(picks.Count(p => p == "a"), 2800, 3200);
        Assert.Equal(["a", "b"], tcp.ClusterNames);
    }

    [Theory]
    [InlineData("tunneling_config")]
    [InlineData("hash_policy")]
    public void Compile_UnimplementedField_IsNackedByName(string field)
    {
        var proxy = new TcpProxy { StatPrefix = "p", Cluster = "c" };
        switch (field)
        {
            case "tunneling_config":
                proxy.TunnelingConfig = new TcpProxy.Types.TunnelingConfig { Hostname = "h" };
                break;
            case "hash_policy":
                proxy.HashPolicy.Add(new Envoy.Type.V3.HashPolicy { SourceIp = new Envoy.Type.V3.HashPolicy.Types.SourceIp() });
                break;
        }

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(TcpListener(_port, proxy), EdsCluster("c")));
        Assert.Contains(field, error.Message, StringComparison.Ordinal);
        Assert.Contains("tcp_proxy", error.Message, StringComparison.Ordinal);
    }

    private static Filter NetworkRbac(Envoy.Config.Rbac.V3.RBAC.Types.Action action, Envoy.Config.Rbac.V3.Permission permission, Envoy.Config.Rbac.V3.Principal principal) => new()
    {
        Name = "envoy.filters.network.rbac",
        TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Network.Rbac.V3.RBAC
        {
            StatPrefix = "tcp.",
            Rules = new Envoy.Config.Rbac.V3.RBAC { Action = action, Policies = { ["p"] = new Envoy.Config.Rbac.V3.Policy { Permissions = { permission }, Principals = { principal } } } },
        }),
    };

    private async Task StartWithRbacAsync(int upstreamPort, Filter rbac)
    {
        var listener = Listener("0.0.0.0_3306", _port, "127.0.0.1", rbac, new Filter { Name = "envoy.filters.network.tcp_proxy", TypedConfig = Any.Pack(new TcpProxy { StatPrefix = Cluster, Cluster = Cluster }) });
        var snapshot = _compiler.Compile(listener, EdsCluster(Cluster), Endpoints(Cluster, ("127.0.0.1", upstreamPort, 1)));
        _server = await _compiler.ServeAsync(snapshot.Listeners["0.0.0.0_3306"], _services);
    }

    [Theory]
    [InlineData("127.0.0.1", false)]
    [InlineData("10.0.0.1", true)]
    public async Task NetworkRbac_DeniedConnection_IsClosedBeforeTheUpstreamIsDialed(string deniedSource, bool admitted)
    {
        using var upstream = new System.Net.Sockets.TcpListener(IPAddress.Loopback, 0);
        upstream.Start();
        var serve = Task.Run(async () =>
        {
            using var accepted = await upstream.AcceptTcpClientAsync();
            var stream = accepted.GetStream();
            await stream.WriteAsync("banner\n"u8.ToArray());
            await stream.CopyToAsync(Stream.Null);
        });
        var deny = NetworkRbac(Envoy.Config.Rbac.V3.RBAC.Types.Action.Deny, new Envoy.Config.Rbac.V3.Permission { Any = true },
            new Envoy.Config.Rbac.V3.Principal { DirectRemoteIp = new Envoy.Config.Core.V3.CidrRange { AddressPrefix = deniedSource, PrefixLen = 32 } });
        await StartWithRbacAsync(((IPEndPoint)upstream.LocalEndpoint).Port, deny);

        using var client = new TcpClient();
        await client.ConnectAsync(IPAddress.Loopback, _port).WaitAsync(Timeouts.Default);
        var buffer = new byte[16];
        var read = await client.GetStream().ReadAsync(buffer).AsTask().WaitAsync(Timeouts.Default);

        // A denied client of a server-first protocol never sees the banner: the upstream is not even dialed.
        Assert.Equal(admitted ? "banner\n" : "", System.Text.Encoding.ASCII.GetString(buffer, 0, read));
        Assert.Equal(admitted ? 1 : 0, Stat("tcp.rbac.allowed"));
        Assert.Equal(admitted ? 0 : 1, Stat("tcp.rbac.denied"));
        Assert.Equal(admitted ? 1 : 0, Stat($"cluster.{Cluster}.upstream_cx_total"));
        if (admitted)
        {
            client.Client.Shutdown(SocketShutdown.Send);
            await serve.WaitAsync(Timeouts.Default);
        }
    }

    [Fact]
    public void Compile_NetworkRbacMatchingARequestHeader_IsNacked()
    {
        var header = NetworkRbac(Envoy.Config.Rbac.V3.RBAC.Types.Action.Allow,
            new Envoy.Config.Rbac.V3.Permission { Header = new Envoy.Config.Route.V3.HeaderMatcher { Name = ":method", StringMatch = new Envoy.Type.Matcher.V3.StringMatcher { Exact = "GET" } } },
            new Envoy.Config.Rbac.V3.Principal { Any = true });
        var listener = Listener("0.0.0.0_3306", _port, "127.0.0.1", header, new Filter { Name = "envoy.filters.network.tcp_proxy", TypedConfig = Any.Pack(new TcpProxy { StatPrefix = "p", Cluster = "c" }) });

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(listener, EdsCluster("c")));
        Assert.Contains("network RBAC filter sees only the connection", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnknownNetworkFilterBeforeTcpProxy_IsNackedByName()
    {
        var unknown = new Filter { Name = "istio.stats", TypedConfig = Any.Pack(new Empty()) };
        var listener = Listener("0.0.0.0_3306", _port, "127.0.0.1", unknown, new Filter { Name = "envoy.filters.network.tcp_proxy", TypedConfig = Any.Pack(new TcpProxy { StatPrefix = "p", Cluster = "c" }) });

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(listener, EdsCluster("c")));
        Assert.Contains("google.protobuf.Empty", error.Message, StringComparison.Ordinal);
        Assert.Contains("istio.stats", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_NoCluster_IsNacked() =>
        Assert.Contains("cluster or weighted_clusters", Assert.Throws<ProxyConfigException>(() => _compiler.Compile(TcpListener(_port, new TcpProxy { StatPrefix = "p" }))).Message, StringComparison.Ordinal);
}
