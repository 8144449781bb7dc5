using Bowline.Proxy.Clusters;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>
/// A <see cref="ProxyConfigCompiler"/> with its collaborators, fed resources the way <c>ConfigApplier</c> feeds it:
/// by type URL, as accepted. The fake clock keeps retired connection pools from being disposed mid-test.
/// </summary>
internal sealed class CompilerHarness : IDisposable
{
    private long _version;

    public CompilerHarness()
    {
        Pools = new ConnectionPools(Time, new Random(42), Secrets);
        AccessLogs = new Bowline.Proxy.AccessLogs.AccessLogFiles(Stats, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        Clusters = new ClusterManager(Stats, Time, new Random(42), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, Dns);
        var catalog = new Bowline.Proxy.Filters.Http.HttpFilterCatalog(
            new Bowline.Proxy.Filters.Http.Router.RouterFilterFactory(new CompileOnlyForwarder(), new Random(42), Time, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance),
            Stats, Time, Metrics, Local);
        Routes = new RouteCompiler(Clusters, catalog);
        Compiler = new ProxyConfigCompiler(Pools, Clusters, new ClusterCompiler(Pools, Clusters), Routes,
            new ListenerCompiler(catalog, Clusters, Stats, Time, new Random(42), Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, AccessLogs, Metrics, Local,
                SpanSinks = new Bowline.Proxy.Tracing.SpanSinks(Clusters, Stats, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance, Options)));
    }

    /// <summary>The OTLP sinks compiled tracing sends spans to (through the named cluster).</summary>
    public Bowline.Proxy.Tracing.SpanSinks SpanSinks { get; }

    public FakeTimeProvider Time { get; } = new();

    /// <summary>The access log files the compiled chains write to (real files, flushed by their own threads).</summary>
    public Bowline.Proxy.AccessLogs.AccessLogFiles AccessLogs { get; }

    /// <summary>The secrets TLS chains and clusters of the compiled config read.</summary>
    public Bowline.Proxy.Tls.SecretStore Secrets { get; } = new();

    public ProxyStats Stats { get; } = new();

    /// <summary>Istio's standard metrics the compiled istio.stats filters record into.</summary>
    public Bowline.Proxy.Telemetry.IstioMetrics Metrics => _metrics ??= new(Stats);

    private Bowline.Proxy.Telemetry.IstioMetrics? _metrics;

    /// <summary>This proxy's own workload, as a sidecar of productpage-v1 would describe itself.</summary>
    public Bowline.Proxy.Telemetry.LocalWorkload Local => _local ??= new(Options);

    private Bowline.Proxy.Telemetry.LocalWorkload? _local;

    /// <summary>The bootstrap of that sidecar.</summary>
    public Bowline.Proxy.ProxyOptions Options { get; } = new Bowline.Proxy.ProxyOptions
    {
        TraceFlushInterval = TimeSpan.FromMilliseconds(200),
        NodeId = "sidecar~127.0.0.1~productpage-v1.default~default.svc.cluster.local",
        WorkloadName = "productpage-v1",
        ServiceAccount = "bookinfo-productpage",
        Labels = new Dictionary<string, string> { ["app"] = "productpage", ["version"] = "v1" },
        XdsAddress = new Uri("http://127.0.0.1:1"),
        CaToken = "t",
    };

    public ConnectionPools Pools { get; }

    /// <summary>What DNS cluster names resolve to in these tests.</summary>
    public FakeDnsResolver Dns { get; } = new();

    public ClusterManager Clusters { get; }

    private ProxySnapshot? _live;

    public ProxyConfigCompiler Compiler { get; }

    /// <summary>The route compiler the config compiler uses, for tests that need a compiled route table alone.</summary>
    public RouteCompiler Routes { get; }

    /// <summary>Serves <paramref name="listener"/> (compiled by this harness) on its real socket, until the caller stops and disposes it.</summary>
    public async Task<Bowline.Proxy.Listeners.ListenerServer> ServeAsync(Bowline.Proxy.Configuration.CompiledListener listener, IServiceProvider services)
    {
        var server = new Bowline.Proxy.Listeners.ListenerServer(listener, new Bowline.Proxy.Http.HttpConnectionManager(Stats, TimeProvider.System), services, Microsoft.Extensions.Logging.Abstractions.NullLoggerFactory.Instance);
        await server.StartAsync(Timeouts.Token());
        return server;
    }

    /// <summary>Compiles a state of the world made of <paramref name="resources"/> (listeners, routes, clusters, endpoints in any order).</summary>
    public ProxySnapshot Compile(params IMessage[] resources)
    {
        var accepted = new Dictionary<string, Dictionary<string, AcceptedResource>>(StringComparer.Ordinal);
        foreach (var resource in resources)
        {
            var (typeUrl, name) = resource switch
            {
                Listener l => (TypeUrls.Listener, l.Name),
                RouteConfiguration r => (TypeUrls.RouteConfiguration, r.Name),
                Cluster c => (TypeUrls.Cluster, c.Name),
                ClusterLoadAssignment a => (TypeUrls.ClusterLoadAssignment, a.ClusterName),
                _ => throw new ArgumentException($"not an xDS resource: {resource.Descriptor.FullName}", nameof(resources)),
            };
            if (!accepted.TryGetValue(typeUrl, out var ofType))
            {
                accepted[typeUrl] = ofType = new Dictionary<string, AcceptedResource>(StringComparer.Ordinal);
            }
            ofType.Add(name, new AcceptedResource(name, resource, "1", Time.GetUtcNow()));
        }
        var byType = accepted.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, AcceptedResource>)kv.Value, StringComparer.Ordinal);
        var versions = accepted.Keys.ToDictionary(k => k, _ => "1", StringComparer.Ordinal);
        try
        {
            // As the applier does: compile against the live snapshot, then commit the staged cluster changes.
            _live = Compiler.Compile(++_version, byType, versions, _live);
            Clusters.Commit();
            Pools.Commit();
            return _live;
        }
        catch
        {
            Clusters.Rollback();
            Pools.Rollback();
            throw;
        }
    }

    /// <summary>Compiles <paramref name="routes"/> the way a sidecar receives them, behind a listener's RDS, and returns the table.</summary>
    public RouteTable CompileRoutes(RouteConfiguration routes, params IMessage[] clustersAndEndpoints)
    {
        var snapshot = Compile([EnvoyResources.HttpListener("routes-under-test", 0, routes.Name), routes, .. clustersAndEndpoints]);
        return snapshot.Listeners["routes-under-test"].ChainFor(0)!.Routes!;
    }

    /// <summary>Compiles a one-route table (virtual host <c>*</c>) and returns that route.</summary>
    public RouteEntry CompileRoute(Route route, params IMessage[] clustersAndEndpoints) =>
        CompileRoutes(EnvoyResources.RouteConfig("80", EnvoyResources.VirtualHost("all", ["*"], route)), clustersAndEndpoints)
            .FindVirtualHost("any")!.Routes.Single();

    public void Dispose()
    {
        SpanSinks.Dispose();
        Clusters.Dispose();
        Pools.Dispose();
        AccessLogs.Dispose();
    }
}

/// <summary>The compiler never forwards; a compiled router that tried would fail the test loudly.</summary>
internal sealed class CompileOnlyForwarder : Yarp.ReverseProxy.Forwarder.IHttpForwarder
{
    public ValueTask<Yarp.ReverseProxy.Forwarder.ForwarderError> SendAsync(Microsoft.AspNetCore.Http.HttpContext context, string destinationPrefix, HttpMessageInvoker httpClient,
        Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig requestConfig, Yarp.ReverseProxy.Forwarder.HttpTransformer transformer) =>
        throw new InvalidOperationException("compile-only harness");

    public ValueTask<Yarp.ReverseProxy.Forwarder.ForwarderError> SendAsync(Microsoft.AspNetCore.Http.HttpContext context, string destinationPrefix, HttpMessageInvoker httpClient,
        Yarp.ReverseProxy.Forwarder.ForwarderRequestConfig requestConfig, Yarp.ReverseProxy.Forwarder.HttpTransformer transformer, CancellationToken cancellationToken) =>
        throw new InvalidOperationException("compile-only harness");
}

/// <summary>A resolver whose answers the test sets; an unknown name fails as an unresolvable one does.</summary>
internal sealed class FakeDnsResolver : Bowline.Proxy.Clusters.Dns.IDnsResolver
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, System.Net.IPAddress[]> _answers = new(StringComparer.OrdinalIgnoreCase);

    public void Set(string host, params string[] addresses) => _answers[host] = [.. addresses.Select(System.Net.IPAddress.Parse)];

    public Task<System.Net.IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) =>
        _answers.TryGetValue(host, out var addresses) ? Task.FromResult(addresses) : Task.FromException<System.Net.IPAddress[]>(new System.Net.Sockets.SocketException(11001));
}
