using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Route.V3;
using Envoy.Service.Discovery.V3;
using Grpc.Core;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>The state-of-the-world ADS server's state machine, over real gRPC against a control plane on port 0.</summary>
public sealed class AdsStreamTests
{
    private const string Shipping = """
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

    private static Task<ControlPlaneFixture> StartBookinfoAsync() => ControlPlaneFixture.StartAsync(
        ("services.yaml", File.ReadAllText(TestFiles.Bookinfo("services.yaml"))),
        ("destination-rule-all.yaml", File.ReadAllText(TestFiles.Bookinfo("destination-rule-all.yaml"))),
        ("bookinfo-gateway.yaml", File.ReadAllText(TestFiles.Bookinfo("bookinfo-gateway.yaml"))),
        ("workload-entries.yaml", Bookinfo.WorkloadEntries));

    [Fact]
    public async Task StreamAggregatedResources_FirstRequestWithoutNode_FailsWithInvalidArgument()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();

        await ads.SubscribeAsync(TypeUrls.Cluster, node: null);

        var error = await ads.ReceiveErrorAsync();
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("node", error.Status.Detail, StringComparison.Ordinal);
        Assert.Empty(cp.Host.Proxies.All);
    }

    [Fact]
    public async Task StreamAggregatedResources_NodeWithoutId_FailsWithInvalidArgument()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        var node = TestNodes.ProductpageSidecar();
        node.Id = "";

        await ads.SubscribeAsync(TypeUrls.Cluster, node);

        var error = await ads.ReceiveErrorAsync();
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Contains("node.id", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StreamAggregatedResources_CdsWildcard_RespondsWithVersionNonceAndEveryCluster()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();

        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        var response = await ads.ReceiveAsync();

        Assert.Equal(TypeUrls.Cluster, response.TypeUrl);
        Assert.NotEmpty(response.VersionInfo);
        Assert.NotEmpty(response.Nonce);
        var names = response.Resources.Select(r => r.Unpack<Cluster>().Name).ToList();
        Assert.Contains("inbound|9080||", names);
        Assert.Contains($"outbound|9080|v2|{Bookinfo.Reviews}", names);
        Assert.Equal(16, names.Count); // 14 outbound (services and subsets), inbound|9080||, BlackHoleCluster
        Assert.All(response.Resources, r => Assert.Equal(TypeUrls.Cluster, r.TypeUrl));
        var proxy = Assert.Single(cp.Host.Proxies.All);
        Assert.Equal(TestNodes.ProductpageSidecar().Id, proxy.Node.Id);
        Assert.Equal(response.VersionInfo, proxy.Types["CDS"].Sent);
    }

    [Fact]
    public async Task StreamAggregatedResources_Ack_IsNotAnsweredAndMarksTheTypeSynced()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        var clusters = await ads.ReceiveAsync();

        await ads.AckAsync(clusters);
        await ads.SubscribeAsync(TypeUrls.Listener, node: null);

        // The stream answers in order: had the ACK been answered, CDS would come first.
        var next = await ads.ReceiveAsync();
        Assert.Equal(TypeUrls.Listener, next.TypeUrl);
        Assert.NotEqual(clusters.Nonce, next.Nonce);
        var cds = Assert.Single(cp.Host.Proxies.All).Types["CDS"];
        Assert.True(cds.Synced);
        Assert.Equal(clusters.VersionInfo, cds.Acked);
        Assert.Null(cds.Rejected);
    }

    [Fact]
    public async Task StreamAggregatedResources_Nack_DoesNotResendTheVersionAndRecordsTheRejection()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        var clusters = await ads.ReceiveAsync();

        await ads.NackAsync(clusters, acceptedVersion: "", reason: "cluster outbound|9080||x: unknown field");
        await ads.SubscribeAsync(TypeUrls.Listener, node: null);

        Assert.Equal(TypeUrls.Listener, (await ads.ReceiveAsync()).TypeUrl);
        var cds = Assert.Single(cp.Host.Proxies.All).Types["CDS"];
        Assert.Equal(clusters.VersionInfo, cds.Rejected);
        Assert.Equal("cluster outbound|9080||x: unknown field", cds.RejectReason);
        Assert.False(cds.Synced);
    }

    [Fact]
    public async Task StreamAggregatedResources_NackThenConfigChange_SendsTheNewVersion()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        var rejected = await ads.ReceiveAsync();
        await ads.NackAsync(rejected, acceptedVersion: "", reason: "no");

        await cp.WriteConfigAsync("shipping.yaml", Shipping);

        var next = await ads.ReceiveAsync();
        Assert.Equal(TypeUrls.Cluster, next.TypeUrl);
        Assert.NotEqual(rejected.VersionInfo, next.VersionInfo);
        Assert.Contains("outbound|8080||shipping.default.svc.cluster.local", next.Resources.Select(r => r.Unpack<Cluster>().Name));
    }

    [Fact]
    public async Task StreamAggregatedResources_ConfigChange_PushesNewCdsWithoutARequest()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        var first = await ads.ReceiveAsync();
        await ads.AckAsync(first);

        await cp.WriteConfigAsync("shipping.yaml", Shipping);

        var pushed = await ads.ReceiveAsync();
        Assert.Equal(TypeUrls.Cluster, pushed.TypeUrl);
        Assert.NotEqual(first.VersionInfo, pushed.VersionInfo);
        Assert.NotEqual(first.Nonce, pushed.Nonce);
        Assert.Equal(first.Resources.Count + 1, pushed.Resources.Count);
        Assert.Contains("outbound|8080||shipping.default.svc.cluster.local", pushed.Resources.Select(r => r.Unpack<Cluster>().Name));
    }

    [Fact]
    public async Task StreamAggregatedResources_ConfigChange_PushesClustersAndEndpointsBeforeListenersAndRoutes()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        var node = TestNodes.ProductpageSidecar();
        // Subscribe in the reverse of the safe order; the push must still come in the safe order.
        await ads.SubscribeAsync(TypeUrls.RouteConfiguration, node, "http_proxy");
        var routes = await ads.ReceiveAsync();
        await ads.AckAsync(routes, "http_proxy");
        await ads.SubscribeAsync(TypeUrls.Listener, node: null);
        await ads.AckAsync(await ads.ReceiveAsync());
        await ads.SubscribeAsync(TypeUrls.ClusterLoadAssignment, node: null, "outbound|8080||shipping.default.svc.cluster.local");
        var endpoints = await ads.ReceiveAsync();
        Assert.Empty(endpoints.Resources);
        await ads.AckAsync(endpoints, "outbound|8080||shipping.default.svc.cluster.local");
        await ads.SubscribeAsync(TypeUrls.Cluster, node: null);
        await ads.AckAsync(await ads.ReceiveAsync());

        await cp.WriteConfigAsync("shipping.yaml", Shipping + """

            ---
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata:
              name: shipping-v1
            spec:
              address: 127.0.0.1
              labels: {app: shipping}
              ports: {http: 15401}
            """);

        var pushed = new[] { await ads.ReceiveAsync(), await ads.ReceiveAsync(), await ads.ReceiveAsync() };
        // The listener set is unchanged (one outbound listener, one inbound), so LDS is not resent.
        Assert.Equal([TypeUrls.Cluster, TypeUrls.ClusterLoadAssignment, TypeUrls.RouteConfiguration], pushed.Select(p => p.TypeUrl));
        Assert.Contains(pushed[2].Resources.Single().Unpack<RouteConfiguration>().VirtualHosts, h => h.Name == "shipping.default.svc.cluster.local:8080");
    }

    [Fact]
    public async Task StreamAggregatedResources_ServiceRemoved_RoutesStopReferringToItsClusterBeforeTheClusterGoes()
    {
        await using var cp = await ControlPlaneFixture.StartAsync(("services.yaml", File.ReadAllText(TestFiles.Bookinfo("services.yaml"))), ("shipping.yaml", Shipping));
        using var ads = cp.Connect();
        var node = TestNodes.ProductpageSidecar();
        const string shipping = "outbound|8080||shipping.default.svc.cluster.local";
        await ads.SubscribeAsync(TypeUrls.Cluster, node);
        var clusters = await ads.ReceiveAsync();
        await ads.AckAsync(clusters);
        await ads.SubscribeAsync(TypeUrls.RouteConfiguration, node: null, "http_proxy");
        await ads.AckAsync(await ads.ReceiveAsync(), "http_proxy");

        var generation = cp.Host.Mesh.Current.Config.Generation;
        File.Delete(Path.Combine(cp.ConfigDirectory, "shipping.yaml"));
        await cp.Host.Mesh.WaitForChangeAsync(generation, TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        // The client already holds every cluster the routes may still name, so the routes change first, then the clusters.
        var pushed = new[] { await ads.ReceiveAsync(), await ads.ReceiveAsync() };
        Assert.Equal([TypeUrls.RouteConfiguration, TypeUrls.Cluster], pushed.Select(p => p.TypeUrl));
        Assert.DoesNotContain(pushed[0].Resources.Single().Unpack<RouteConfiguration>().VirtualHosts, h => h.Name.StartsWith("shipping.", StringComparison.Ordinal));
        Assert.DoesNotContain(shipping, pushed[1].Resources.Select(r => r.Unpack<Cluster>().Name));
        Assert.Equal(clusters.Resources.Count - 1, pushed[1].Resources.Count);
    }

    [Fact]
    public async Task StreamAggregatedResources_ServiceReplaced_NewClusterFirstThenRoutesThenTheOldClusterGoes()
    {
        await using var cp = await ControlPlaneFixture.StartAsync(("services.yaml", File.ReadAllText(TestFiles.Bookinfo("services.yaml"))), ("shipping.yaml", Shipping));
        using var ads = cp.Connect();
        var node = TestNodes.ProductpageSidecar();
        await ads.SubscribeAsync(TypeUrls.Cluster, node);
        await ads.AckAsync(await ads.ReceiveAsync());
        await ads.SubscribeAsync(TypeUrls.RouteConfiguration, node: null, "http_proxy");
        await ads.AckAsync(await ads.ReceiveAsync(), "http_proxy");

        await cp.WriteConfigAsync("shipping.yaml", Shipping.Replace("name: shipping", "name: delivery", StringComparison.Ordinal).Replace("app: shipping", "app: delivery", StringComparison.Ordinal));

        var pushed = new[] { await ads.ReceiveAsync(), await ads.ReceiveAsync(), await ads.ReceiveAsync() };
        Assert.Equal([TypeUrls.Cluster, TypeUrls.RouteConfiguration, TypeUrls.Cluster], pushed.Select(p => p.TypeUrl));
        var during = pushed[0].Resources.Select(r => r.Unpack<Cluster>().Name).ToList();
        Assert.Contains("outbound|8080||delivery.default.svc.cluster.local", during);
        Assert.Contains("outbound|8080||shipping.default.svc.cluster.local", during);
        var after = pushed[2].Resources.Select(r => r.Unpack<Cluster>().Name).ToList();
        Assert.DoesNotContain("outbound|8080||shipping.default.svc.cluster.local", after);
    }

    [Fact]
    public async Task StreamAggregatedResources_StaleNonce_IsIgnored()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        var clusters = await ads.ReceiveAsync();

        // A NACK and a subscription change that both carry a nonce the server never sent last.
        await ads.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, ResponseNonce = "stale", ErrorDetail = new Google.Rpc.Status { Message = "old" } });
        await ads.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, ResponseNonce = "stale", ResourceNames = { "inbound|9080||" } });
        await ads.SubscribeAsync(TypeUrls.Listener, node: null);

        Assert.Equal(TypeUrls.Listener, (await ads.ReceiveAsync()).TypeUrl);
        var cds = Assert.Single(cp.Host.Proxies.All).Types["CDS"];
        Assert.Null(cds.Rejected);
        Assert.Null(cds.Acked);
        Assert.Equal(clusters.VersionInfo, cds.Sent);
    }

    [Fact]
    public async Task StreamAggregatedResources_RdsNamedSubscription_ReturnsOnlyTheNamedRouteConfigurations()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();

        await ads.SubscribeAsync(TypeUrls.RouteConfiguration, TestNodes.ProxylessGrpc(), "reviews:9080");
        var one = await ads.ReceiveAsync();

        Assert.Equal(["reviews:9080"], one.Resources.Select(r => r.Unpack<RouteConfiguration>().Name));

        // Adding a name (with the latest nonce) is a subscription change and gets a response with both.
        await ads.AckAsync(one, "reviews:9080", "ratings:9080", "nosuch:1");
        var two = await ads.ReceiveAsync();
        Assert.Equal(["ratings:9080", "reviews:9080"], two.Resources.Select(r => r.Unpack<RouteConfiguration>().Name));
        Assert.NotEqual(one.VersionInfo, two.VersionInfo);
    }

    [Fact]
    public async Task StreamAggregatedResources_Disconnect_RemovesTheProxy()
    {
        await using var cp = await StartBookinfoAsync();
        var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        await ads.ReceiveAsync();
        Assert.Single(cp.Host.Proxies.All);

        ads.Dispose();

        await PollUntilAsync(() => cp.Host.Proxies.All.Count == 0);
    }

    [Fact]
    public async Task StreamAggregatedResources_TwoStreams_AreTrackedSeparately()
    {
        await using var cp = await StartBookinfoAsync();
        using var sidecar = cp.Connect();
        using var gateway = cp.Connect();

        await sidecar.SubscribeAsync(TypeUrls.Listener, TestNodes.ProductpageSidecar());
        await gateway.SubscribeAsync(TypeUrls.Listener, TestNodes.IngressGateway());
        var sidecarListeners = await sidecar.ReceiveAsync();
        var gatewayListeners = await gateway.ReceiveAsync();

        Assert.Equal(2, sidecarListeners.Resources.Count);
        Assert.Single(gatewayListeners.Resources);
        Assert.Equal([ProxyKind.Gateway, ProxyKind.Sidecar], cp.Host.Proxies.All.Select(p => p.Node.Kind));
    }

    [Fact]
    public async Task StopAsync_WithAConnectedStream_EndsTheStreamPromptly()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.ProductpageSidecar());
        await ads.ReceiveAsync();

        // No cancellation token: a stream that kept the server busy would hold shutdown for the host's whole shutdown timeout.
        await cp.Host.StopAsync(CancellationToken.None).WaitAsync(TestTimeouts.Default);

        Assert.Empty(cp.Host.Proxies.All);
    }

    [Fact]
    public async Task DeltaAggregatedResources_Any_FailsWithUnimplemented()
    {
        await using var cp = await StartBookinfoAsync();
        using var call = cp.Client.DeltaAggregatedResources(cancellationToken: TestTimeouts.Token());

        var error = await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(TestTimeouts.Default));

        Assert.Equal(StatusCode.Unimplemented, error.StatusCode);
    }

    /// <summary>Checks a condition every 10 ms until it holds, failing after <see cref="TestTimeouts.Default"/>.</summary>
    private static async Task PollUntilAsync(Func<bool> condition)
    {
        using var deadline = new CancellationTokenSource(TestTimeouts.Default);
        while (!condition())
        {
            await Task.Delay(TimeSpan.FromMilliseconds(10), deadline.Token);
        }
    }
}
