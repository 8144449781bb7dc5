using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>Proxyless gRPC clients whose bootstrap lacks <c>GENERATOR: grpc</c> still get API listeners, recognised by their user agent or their requests.</summary>
public sealed class ProxylessRecognitionTests
{
    private static Task<ControlPlaneFixture> StartBookinfoAsync() => ControlPlaneFixture.StartAsync(
        ("services.yaml", File.ReadAllText(TestFiles.Bookinfo("services.yaml"))),
        ("workload-entries.yaml", Bookinfo.WorkloadEntries));

    [Theory]
    [InlineData("gRPC Node Pure JS", "reviews:9080")]
    [InlineData("gRPC Go", "reviews.default.svc.cluster.local:9080")]
    [InlineData("some-unknown-xds-client", "reviews:9080")]
    public async Task StreamAggregatedResources_NamedLdsWithoutGenerator_IsAnsweredWithTheApiListener(string userAgent, string listener)
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();

        await ads.SubscribeAsync(TypeUrls.Listener, TestNodes.BareGrpcClient(userAgent), listener);
        var response = await ads.ReceiveAsync();

        var served = Assert.Single(response.Resources).Unpack<Listener>();
        Assert.Equal(listener, served.Name);
        Assert.Equal(listener, served.ApiListener.ApiListener_.Unpack<HttpConnectionManager>().Rds.RouteConfigName);
        Assert.Equal(ProxyKind.ProxylessGrpc, Assert.Single(cp.Host.Proxies.All).Node.Kind);
    }

    [Fact]
    public async Task StreamAggregatedResources_GrpcUserAgentAskingForClustersFirst_GetsProxylessClusters()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();

        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.BareGrpcClient("gRPC Java"));
        var clusters = (await ads.ReceiveAsync()).Resources.Select(r => r.Unpack<Cluster>()).ToList();

        // No inbound clusters and no Envoy-only protocol options: what a gRPC client accepts.
        Assert.DoesNotContain(clusters, c => c.Name.StartsWith("inbound|", StringComparison.Ordinal));
        Assert.All(clusters, c => Assert.Empty(c.TypedExtensionProtocolOptions));
        Assert.Equal(ProxyKind.ProxylessGrpc, Assert.Single(cp.Host.Proxies.All).Node.Kind);
    }

    [Fact]
    public async Task StreamAggregatedResources_UnknownAgentNamingListenersAfterClusters_IsReclassifiedAndItsClustersResent()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();
        await ads.SubscribeAsync(TypeUrls.Cluster, TestNodes.BareGrpcClient("acme-xds"));
        var sidecarClusters = await ads.ReceiveAsync();
        Assert.Equal(ProxyKind.Sidecar, Assert.Single(cp.Host.Proxies.All).Node.Kind);
        Assert.Contains(sidecarClusters.Resources, r => r.Unpack<Cluster>().TypedExtensionProtocolOptions.Count > 0);
        await ads.AckAsync(sidecarClusters);

        await ads.SubscribeAsync(TypeUrls.Listener, node: null, "ratings:9080");

        var resent = await ads.ReceiveAsync();
        var listeners = await ads.ReceiveAsync();
        Assert.Equal(TypeUrls.Cluster, resent.TypeUrl);
        Assert.NotEqual(sidecarClusters.VersionInfo, resent.VersionInfo);
        Assert.All(resent.Resources, r => Assert.Empty(r.Unpack<Cluster>().TypedExtensionProtocolOptions));
        Assert.Equal(TypeUrls.Listener, listeners.TypeUrl);
        Assert.Equal("ratings:9080", Assert.Single(listeners.Resources).Unpack<Listener>().Name);
        Assert.Equal(ProxyKind.ProxylessGrpc, Assert.Single(cp.Host.Proxies.All).Node.Kind);
    }

    [Fact]
    public async Task StreamAggregatedResources_SidecarWildcardLds_StaysASidecar()
    {
        await using var cp = await StartBookinfoAsync();
        using var ads = cp.Connect();

        await ads.SubscribeAsync(TypeUrls.Listener, TestNodes.BareGrpcClient("envoy"));
        var response = await ads.ReceiveAsync();

        Assert.All(response.Resources, r => Assert.Null(r.Unpack<Listener>().ApiListener));
        Assert.Equal(ProxyKind.Sidecar, Assert.Single(cp.Host.Proxies.All).Node.Kind);
    }
}
