using System.Text;
using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Service.Discovery.V3;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>
/// A config far past the sizes HTTP/2 and gRPC allow by default: a Service with 17,500 ports is 17,500 clusters, and
/// the client's EDS subscription naming all of them is about 0.8 MB, more than Kestrel's default 768 KiB stream window.
/// </summary>
public sealed class LargeConfigTests
{
    private const int Ports = 17_500;

    /// <summary>Translating 17,500 clusters takes seconds when the machine is idle; shared and busy, many more.</summary>
    private static readonly TimeSpan Heavy = TimeSpan.FromSeconds(90);
    private const string Small = """
        apiVersion: v1
        kind: Service
        metadata:
          name: shipping
        spec:
          ports:
          - port: 8080
            name: http
          selector:
            app: shipping
        """;

    private static string Wide(int ports = Ports)
    {
        var yaml = new StringBuilder("apiVersion: v1\nkind: Service\nmetadata:\n  name: wide\nspec:\n  selector:\n    app: wide\n  ports:\n");
        for (var i = 0; i < ports; i++)
        {
            yaml.Append(System.Globalization.CultureInfo.InvariantCulture, $"  - {{name: http-{i}, port: {20_000 + i}}}\n");
        }
        return yaml.ToString();
    }

    [Fact]
    public async Task StreamAggregatedResources_SeventeenThousandClusters_EdsSubscriptionIsAnsweredAndLaterChangesArrive()
    {
        await using var cp = await ControlPlaneFixture.StartAsync(("wide.yaml", Wide()));
        using var ads = cp.Connect();

        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        var clusters = await ads.ReceiveAsync(Heavy);
        Assert.Equal(Ports + 2, clusters.Resources.Count); // every port, inbound|9080||, BlackHoleCluster
        await ads.AckAsync(clusters);
        var edsNames = clusters.Resources.Select(r => r.Unpack<Cluster>()).Where(c => c.Type == Cluster.Types.DiscoveryType.Eds).Select(c => c.EdsClusterConfig.ServiceName).Order(StringComparer.Ordinal).ToArray();
        var subscription = new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, ResourceNames = { edsNames } };
        Assert.True(subscription.CalculateSize() > 768 * 1024, $"the subscription must exceed Kestrel's default stream window; it is {subscription.CalculateSize()} bytes");

        // As a client whose one loop both reads and writes does: ask for the (large) routes, then, before reading them,
        // send the EDS subscription. The server is busy writing routes the client does not read yet; the client's write
        // must still complete, or neither side ever moves again.
        await ads.SubscribeAsync(TypeUrls.RouteConfiguration, node: null, "http_proxy");
        await ads.SendAsync(subscription);
        var routes = await ads.ReceiveAsync(Heavy);
        Assert.Equal(TypeUrls.RouteConfiguration, routes.TypeUrl);
        Assert.True(routes.CalculateSize() > 1024 * 1024, $"the routes must be larger than any client's initial window; they are {routes.CalculateSize()} bytes");
        await ads.AckAsync(routes, "http_proxy");
        var endpoints = await ads.ReceiveAsync(Heavy);
        Assert.Equal(TypeUrls.ClusterLoadAssignment, endpoints.TypeUrl);
        Assert.Equal(edsNames, endpoints.Resources.Select(r => r.Unpack<ClusterLoadAssignment>().ClusterName));
        await ads.AckAsync(endpoints, edsNames);

        // The big Service goes and a small one comes: the change reaches the client at once.
        await cp.WriteConfigAsync("wide.yaml", Small);
        var shrunk = await ads.ReceiveAsync(Heavy);
        Assert.Equal(TypeUrls.Cluster, shrunk.TypeUrl);
        Assert.Contains("outbound|8080||shipping.default.svc.cluster.local", shrunk.Resources.Select(r => r.Unpack<Cluster>().Name));
    }

    [Fact]
    public async Task RunAsync_WhileAResponseWriteIsBlocked_KeepsReadingRequests()
    {
        await using var stream = new InMemoryAdsStream(writesBlocked: true);
        stream.Mesh.Publish(Bookinfo.Index().Config);

        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, Node = TestNodes.ProductpageSidecar() });
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Listener });
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, ResourceNames = { $"outbound|9080|v1|{Bookinfo.Reviews}" } });

        // The CDS write cannot complete (the client is not reading), yet every request is taken off the wire, so the
        // client's own writes complete and it goes on to read.
        await PollUntilAsync(() => stream.RequestsRead == 3);
        Assert.True(stream.NothingSent);
        stream.OpenWrites();
        Assert.Equal([TypeUrls.Cluster, TypeUrls.Listener, TypeUrls.ClusterLoadAssignment], [(await stream.ReceiveAsync()).TypeUrl, (await stream.ReceiveAsync()).TypeUrl, (await stream.ReceiveAsync()).TypeUrl]);
    }

    [Fact]
    public async Task SendAsync_ResponseOverTheMessageLimit_IsSkippedAndTheNextChangeIsDelivered()
    {
        const int limit = 32 * 1024;
        var wide = TestFiles.ParseValid("wide.yaml", Wide(500));
        await using var stream = new InMemoryAdsStream(maxResponseBytes: limit);
        var before = ControlPlaneMetrics.OversizedResponses.Value;
        stream.Mesh.Publish(new MeshConfig(wide, 1));

        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, Node = TestNodes.ProductpageSidecar() });
        await PollUntilAsync(() => ControlPlaneMetrics.OversizedResponses.Value > before);
        Assert.True(stream.NothingSent);
        var proxy = Assert.Single(stream.Proxies.All);
        Assert.Null(proxy.Types.GetValueOrDefault("CDS")?.Sent);
        // bowline wait must not call an undelivered change applied or unaffected.
        await PollUntilAsync(() => proxy.StatusOf(1).State == Bowline.ControlPlane.Xds.ChangeState.Failed);
        Assert.Contains("CDS response of", proxy.StatusOf(1).Detail, StringComparison.Ordinal);

        stream.Mesh.Publish(new MeshConfig(TestFiles.ParseValid("small.yaml", Small), 2));

        var clusters = await stream.ReceiveAsync();
        Assert.NotEqual(Bowline.ControlPlane.Xds.ChangeState.Failed, proxy.StatusOf(2).State);
        Assert.True(clusters.CalculateSize() <= limit);
        Assert.Contains("outbound|8080||shipping.default.svc.cluster.local", clusters.Resources.Select(r => r.Unpack<Cluster>().Name));
    }

    private static async Task PollUntilAsync(Func<bool> condition)
    {
        using var deadline = new CancellationTokenSource(TestTimeouts.Default);
        while (!condition())
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), deadline.Token);
        }
    }
}
