namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>A started <see cref="ProxyHost"/> with a sidecar's identity, stopped (listeners drained, xDS stream closed) on dispose.</summary>
internal sealed class RunningProxy : IAsyncDisposable
{
    public const string NodeId = "sidecar~127.0.0.1~reviews-v1-7f9c.bookinfo~bookinfo.svc.cluster.local";

    /// <summary>Short, so a test on real time would not wait long; tests that exercise backoff drive a fake clock anyway.</summary>
    public static readonly TimeSpan InitialBackoff = TimeSpan.FromMilliseconds(100);

    public static readonly TimeSpan MaxBackoff = TimeSpan.FromSeconds(2);

    private RunningProxy(ProxyHost host, int outboundPort)
    {
        Host = host;
        OutboundPort = outboundPort;
    }

    public ProxyHost Host { get; }

    /// <summary>The port reported in the node metadata; listeners come from xDS, so nothing binds it unless the test's config says so.</summary>
    public int OutboundPort { get; }

    public static async Task<RunningProxy> StartAsync(Uri xdsAddress, TimeProvider? time = null, int? statusPort = null, Uri? appMetrics = null)
    {
        var outboundPort = Ports.Free();
        var host = ProxyHost.Create(new ProxyOptions
        {
            NodeId = NodeId,
            WorkloadName = "reviews-v1",
            Namespace = "bookinfo",
            Labels = new Dictionary<string, string> { ["app"] = "reviews", ["version"] = "v1" },
            ServiceAccount = "bookinfo-reviews",
            XdsAddress = xdsAddress,
            AdminPort = 0,
            OutboundPort = outboundPort,
            InitialBackoff = InitialBackoff,
            MaxBackoff = MaxBackoff,
            DrainTimeout = TimeSpan.FromSeconds(1),
            StatusPort = statusPort,
            AppMetrics = appMetrics,
        }, time: time, random: new Random(42));
        await host.StartAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);
        return new RunningProxy(host, outboundPort);
    }

    public async ValueTask DisposeAsync()
    {
        await Host.StopAsync().WaitAsync(Timeouts.Default);
        await Host.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
    }
}
