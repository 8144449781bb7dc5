using Bowline.Proxy.Telemetry;

namespace Bowline.Proxy.Tests.Telemetry;

/// <summary>Istio's compressed endpoint telemetry label, which names the server in a client's metrics when no metadata was exchanged.</summary>
public sealed class WorkloadMetadataTests
{
    [Fact]
    public void FromEndpoint_ReadsIstiosFiveFields_AndInternsThem()
    {
        var reviews = WorkloadMetadata.FromEndpoint("reviews-v2;bookinfo;reviews;v2;east");

        Assert.NotNull(reviews);
        Assert.Equal(("reviews-v2", "bookinfo", "reviews", "v2", "east"), (reviews.Workload, reviews.Namespace, reviews.CanonicalService, reviews.CanonicalRevision, reviews.Cluster));
        Assert.Same(reviews, WorkloadMetadata.FromEndpoint("reviews-v2;bookinfo;reviews;v2;east"));
    }

    [Fact]
    public void FromEndpoint_AnEmptyRevisionIsLatest_AndAnEmptyClusterIstiosDefault()
    {
        var ratings = WorkloadMetadata.FromEndpoint("ratings-v1;default;ratings;;");

        Assert.Equal(("latest", WorkloadMetadata.DefaultCluster), (ratings!.CanonicalRevision, ratings.Cluster));
    }

    [Theory]
    [InlineData("")]
    [InlineData("reviews-v1;default;reviews;v1")]
    [InlineData(";default;reviews;v1;Kubernetes")]
    [InlineData("a;b;c;d;e;f")]
    public void FromEndpoint_AnotherShape_NamesNoWorkload(string value) => Assert.Null(WorkloadMetadata.FromEndpoint(value));
}
