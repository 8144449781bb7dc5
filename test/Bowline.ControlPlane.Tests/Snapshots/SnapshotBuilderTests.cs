using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Route.V3;

namespace Bowline.ControlPlane.Tests.Snapshots;

public sealed class SnapshotBuilderTests
{
    [Fact]
    public void Build_RouteToMissingCluster_IsRejectedNamingBoth()
    {
        var builder = new SnapshotBuilder();
        builder.AddRoute(new RouteConfiguration
        {
            Name = "http_proxy",
            VirtualHosts = { new VirtualHost { Name = "reviews", Domains = { "reviews" }, Routes = { new Route { Match = new RouteMatch { Prefix = "/" }, Route_ = new RouteAction { Cluster = "outbound|9080||ghost" } } } } },
        });

        var error = Assert.Throws<InvalidOperationException>(builder.Build);

        Assert.Contains("route configuration http_proxy sends traffic to cluster outbound|9080||ghost, which does not exist", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Build_EdsClusterWithoutAssignment_IsRejected()
    {
        var builder = new SnapshotBuilder();
        builder.AddCluster(new Cluster { Name = "outbound|9080||reviews", Type = Cluster.Types.DiscoveryType.Eds });

        var error = Assert.Throws<InvalidOperationException>(builder.Build);

        Assert.Contains("EDS cluster outbound|9080||reviews has no load assignment", error.Message, StringComparison.Ordinal);
    }
}
