using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Endpoint.V3;
using Envoy.Service.Discovery.V3;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>A stream whose first translation failed: it must stay silent, keep every subscription change, and answer once translation works.</summary>
public sealed class AdsStreamTranslationFailureTests
{
    private const string V1 = $"outbound|9080|v1|{Bookinfo.Reviews}";
    private const string V2 = $"outbound|9080|v2|{Bookinfo.Reviews}";

    [Fact]
    public async Task HandleRequest_AfterAFailedFirstTranslation_KeepsTheSubscriptionChangeAndAnswersItOnTheNextGeneration()
    {
        var calls = 0;
        XdsSnapshot Translate(ServiceIndex index, ProxyNode node) =>
            Interlocked.Increment(ref calls) == 1 ? throw new InvalidOperationException("inconsistent snapshot (test)") : MeshTranslator.Translate(index, node);
        await using var stream = new InMemoryAdsStream(Translate);

        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, Node = TestNodes.ProductpageSidecar(), ResourceNames = { V1 } });
        // Nothing has been answered, so the client's next request carries proto3's empty nonce: a subscription change, not a stale request.
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, ResponseNonce = "", ResourceNames = { V1, V2 } });
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster });
        // The first translation must see generation 0 and fail before the next generation is published.
        // And the stream must have taken all three requests in before the change arrives, or it answers a subset.
        await PollUntilAsync(() => Volatile.Read(ref calls) == 1 && stream.Proxies.All.Count == 1 && stream.RequestsRead == 3);
        Assert.True(stream.NothingSent, "a node whose translation never succeeded must get nothing, not an empty config");

        stream.Mesh.Publish(Bookinfo.Index().Config);

        var cds = await stream.ReceiveAsync();
        var eds = await stream.ReceiveAsync();
        Assert.Equal(TypeUrls.Cluster, cds.TypeUrl);
        Assert.NotEmpty(cds.Resources);
        Assert.Equal(TypeUrls.ClusterLoadAssignment, eds.TypeUrl);
        Assert.Equal([V1, V2], eds.Resources.Select(r => r.Unpack<ClusterLoadAssignment>().ClusterName));
        var types = Assert.Single(stream.Proxies.All).Types;
        Assert.Null(types["EDS"].Acked);
        Assert.Null(types["EDS"].Rejected);
    }

    [Fact]
    public async Task HandleRequest_ErrorDetailBeforeAnyResponse_IsNotRecordedAsANack()
    {
        var calls = 0;
        XdsSnapshot Translate(ServiceIndex index, ProxyNode node) =>
            Interlocked.Increment(ref calls) == 1 ? throw new InvalidOperationException("inconsistent snapshot (test)") : MeshTranslator.Translate(index, node);
        await using var stream = new InMemoryAdsStream(Translate);

        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, Node = TestNodes.ProductpageSidecar() });
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, ErrorDetail = new Google.Rpc.Status { Message = "nothing to reject" } });
        await PollUntilAsync(() => Volatile.Read(ref calls) == 1);
        // Requests already queued are read before the change is handled, so the error is seen first.
        stream.Mesh.Publish(Bookinfo.Index().Config);

        var cds = await stream.ReceiveAsync();
        Assert.Equal(TypeUrls.Cluster, cds.TypeUrl);
        var status = Assert.Single(stream.Proxies.All).Types["CDS"];
        Assert.Null(status.Rejected);
        Assert.Equal(cds.VersionInfo, status.Sent);
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
