using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Tests.Translation;
using Bowline.ControlPlane.Xds;
using Bowline.Xds;
using Envoy.Service.Discovery.V3;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>
/// Where a config generation stands on a proxy (what <c>bowline wait</c> and <c>proxy-status</c> read): pending until
/// translated and ACKed, applied once every type it changed is ACKed (with the endpoints its clusters asked for),
/// NACKed with the reason, or unaffected.
/// </summary>
public sealed class ChangeProgressTests
{
    /// <summary>An external service with one more host (and so one more cluster) per version; none removed, so each change is one CDS push.</summary>
    private static string Reviews(string version) => $$"""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {name: external, namespace: default}
        spec:
          hosts: [{{string.Join(", ", Enumerable.Range(10, int.Parse(version, System.Globalization.CultureInfo.InvariantCulture) - 9).Where(v => v % 10 == 0).Select(v => $"api-{v}.example.com"))}}]
          ports: [{number: 80, name: http, protocol: HTTP}]
          resolution: STATIC
          endpoints: [{address: 10.9.9.9}]
        """;

    [Theory]
    [InlineData("")]
    [InlineData("  ")]
    public void Of_NoFileNamed_IsUnknownWithTheFix_NotAnException(string file)
    {
        var dir = Directory.CreateTempSubdirectory("bowline-wait-").FullName;
        try
        {
            using var source = new Bowline.ControlPlane.Config.DirectoryConfigSource([dir], Microsoft.Extensions.Logging.Abstractions.NullLogger<Bowline.ControlPlane.Config.DirectoryConfigSource>.Instance);

            var report = ChangeProgress.Of(file, "00", source, new ConnectedProxies(TimeProvider.System));

            Assert.Equal("unknown", report.State);
            Assert.Contains("no file given", Assert.Single(report.Errors), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void Of_AFileSeenUnderAnotherPath_IsFoundByItsNameAndContent()
    {
        var dir = Directory.CreateTempSubdirectory("bowline-wait-").FullName;
        try
        {
            var text = Reviews("10");
            File.WriteAllText(Path.Combine(dir, "external.yaml"), text);
            using var source = new Bowline.ControlPlane.Config.DirectoryConfigSource([dir], Microsoft.Extensions.Logging.Abstractions.NullLogger<Bowline.ControlPlane.Config.DirectoryConfigSource>.Instance);
            Assert.NotNull(source.Reload());
            var hash = Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));
            var proxies = new ConnectedProxies(TimeProvider.System);

            // The CLI on another machine, or the directory mounted elsewhere: the same name and content is that file.
            var elsewhere = ChangeProgress.Of("/mnt/laptop/config/external.yaml", hash, source, proxies);
            Assert.Equal(("loaded", Path.Combine(dir, "external.yaml")), (elsewhere.State, elsewhere.File));

            // Other content under that name: the control plane has not read that version yet.
            Assert.Equal("not-loaded", ChangeProgress.Of("/mnt/laptop/config/external.yaml", "00", source, proxies).State);

            // A name the control plane has never read.
            var unknown = ChangeProgress.Of("/mnt/laptop/config/other.yaml", hash, source, proxies);
            Assert.Equal("unknown", unknown.State);
            Assert.Contains("is not a file of the control plane's config directories", Assert.Single(unknown.Errors), StringComparison.Ordinal);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public async Task StatusOf_ChangeIsPendingUntilAcked_ThenApplied_ANackIsNamed_AndALaterNoOpLeavesItUnaffected()
    {
        await using var stream = new InMemoryAdsStream();
        stream.Mesh.Publish(Bookinfo.Index(Reviews("10")).Config);
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, Node = TestNodes.ProductpageSidecar() });
        var first = await stream.ReceiveAsync();
        var proxy = Assert.Single(stream.Proxies.All);
        var generation = stream.Mesh.Current.Config.Generation;

        // Sent, not yet answered.
        Assert.Equal((ChangeState.Pending, "waiting for the ACK of CDS"), proxy.StatusOf(generation));
        Assert.Equal("STALE", proxy.Types["CDS"].Label);

        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, VersionInfo = first.VersionInfo, ResponseNonce = first.Nonce });
        await PollUntilAsync(() => proxy.Types["CDS"].Synced);
        Assert.Equal("SYNCED", proxy.Types["CDS"].Label);

        // Envoy asks for the new clusters' endpoints only once it applied them: until those are subscribed and ACKed,
        // the change has not reached it, and has not converged.
        Assert.Equal((ChangeState.Pending, "waiting for the ACK of EDS"), proxy.StatusOf(generation));
        Assert.Equal(-1, proxy.ConvergedGeneration);
        var endpointNames = proxy.Types["CDS"].FollowUps;
        Assert.NotEmpty(endpointNames);
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, ResourceNames = { endpointNames.Take(1) } });
        var partial = await stream.ReceiveAsync();
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, VersionInfo = partial.VersionInfo, ResponseNonce = partial.Nonce, ResourceNames = { endpointNames.Take(1) } });
        await PollUntilAsync(() => proxy.Types["EDS"].Synced);
        if (endpointNames.Count > 1)
        {
            // ACKed, but not yet subscribed to every assignment the clusters name.
            Assert.Equal(ChangeState.Pending, proxy.StatusOf(generation).State);
        }
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, VersionInfo = partial.VersionInfo, ResponseNonce = partial.Nonce, ResourceNames = { endpointNames } });
        var endpoints = await stream.ReceiveAsync();
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.ClusterLoadAssignment, VersionInfo = endpoints.VersionInfo, ResponseNonce = endpoints.Nonce, ResourceNames = { endpointNames } });
        // The stream records convergence just after the ACK's status lands: wait for the record, not only the status.
        await PollUntilAsync(() => proxy.ConvergedGeneration == generation);
        Assert.Equal(ChangeState.Applied, proxy.StatusOf(generation).State);

        // A later generation the proxy has not translated yet is pending; one that changes the clusters and is NACKed names the type and reason.
        var next = new Bowline.ControlPlane.Config.MeshConfig(Bookinfo.Index(Reviews("20")).Config.Resources, generation + 1);
        Assert.Equal(ChangeState.Pending, proxy.StatusOf(next.Generation).State);
        stream.Mesh.Publish(next);
        var second = await stream.ReceiveAsync();
        await stream.SendAsync(new DiscoveryRequest { TypeUrl = TypeUrls.Cluster, VersionInfo = first.VersionInfo, ResponseNonce = second.Nonce, ErrorDetail = new Google.Rpc.Status { Message = "cluster x: bad" } });
        await PollUntilAsync(() => proxy.StatusOf(next.Generation).State == ChangeState.Nacked);
        Assert.Equal($"CDS {second.VersionInfo}: cluster x: bad", proxy.StatusOf(next.Generation).Detail);
        Assert.Equal("NACKED", proxy.Types["CDS"].Label);

        // A generation that changes nothing this proxy has leaves it unaffected, once translated.
        var same = new Bowline.ControlPlane.Config.MeshConfig(next.Resources, next.Generation + 1);
        stream.Mesh.Publish(same);
        await PollUntilAsync(() => proxy.Generation == same.Generation);
        Assert.Equal((ChangeState.Unaffected, null), proxy.StatusOf(same.Generation));
    }

    [Fact]
    public void StatusOf_AFollowUpTheProxyStillHoldsRejected_IsNacked_AndHoldsBackNoLaterChange()
    {
        var proxy = new ConnectedProxy(Bowline.ControlPlane.Translation.ProxyNode.From(TestNodes.ProductpageSidecar()), "test", DateTimeOffset.UnixEpoch);
        // Generation 3's endpoints were rejected; generation 5 changes only the clusters, which name those endpoints.
        var endpoints = new SubscriptionState(TypeUrls.ClusterLoadAssignment) { SentVersion = "e1", RejectedVersion = "e1", RejectReason = "endpoint x: bad", SentGeneration = 3 };
        endpoints.Subscribe(["outbound|9080||reviews"], isFirst: true);
        var clusters = new SubscriptionState(TypeUrls.Cluster) { SentVersion = "c2", AckedVersion = "c2", SentGeneration = 5, FollowUps = new HashSet<string>(["outbound|9080||reviews"]) };
        proxy.Update(TypeUrls.ClusterLoadAssignment, endpoints);
        proxy.Update(TypeUrls.Cluster, clusters);
        proxy.Processed(5);

        Assert.Equal((ChangeState.Nacked, "EDS e1: endpoint x: bad"), proxy.StatusOf(5));
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
