using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// What a proxyless gRPC client's clusters carry of a DestinationRule's connection pool and outlier detection, checked
/// against Istio's gRPC generator (pilot/pkg/networking/grpcgen/cds.go: applyCircuitBreakers, and no outlier detection).
/// </summary>
public sealed class ProxylessTrafficPolicyTranslationTests
{
    private static readonly ProxyNode Proxyless = ProxyNode.From(TestNodes.ProxylessGrpc());
    private static readonly ProxyNode Sidecar = ProxyNode.From(TestNodes.ProductpageSidecar());

    private const string ReviewsCluster = "outbound|9080||reviews.default.svc.cluster.local";
    private const string ReviewsV1Cluster = "outbound|9080|v1|reviews.default.svc.cluster.local";
    private const string ReviewsV2Cluster = "outbound|9080|v2|reviews.default.svc.cluster.local";

    /// <summary>A DestinationRule for reviews that replaces the sample's (it sorts first), keeping subsets v1 and v2.</summary>
    private static string ReviewsRule(string? trafficPolicy, string? subsetV1Policy = null) => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: a-reviews}
        spec:
          host: reviews
          {{(trafficPolicy is null ? "" : "trafficPolicy: " + trafficPolicy)}}
          subsets:
          - name: v1
            labels: {version: v1}
            {{(subsetV1Policy is null ? "" : "trafficPolicy: " + subsetV1Policy)}}
          - name: v2
            labels: {version: v2}
        """;

    [Fact]
    public void Translate_ProxylessSubsetHttp2MaxRequests_IsThatClustersDefaultPriorityMaxRequestsAlone()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule(null, "{connectionPool: {http: {http2MaxRequests: 2, http1MaxPendingRequests: 7, maxRetries: 3}, tcp: {maxConnections: 5}}}")), Proxyless);

        var thresholds = Cluster(snapshot, ReviewsV1Cluster).CircuitBreakers.Thresholds.Single();
        // grpc-js-xds reads max_requests of the DEFAULT-priority threshold; gRFC A32 ignores every other field, and
        // Istio leaves them unset for gRPC clients.
        Assert.Equal(RoutingPriority.Default, thresholds.Priority);
        Assert.Equal(2u, thresholds.MaxRequests);
        Assert.Null(thresholds.MaxPendingRequests);
        Assert.Null(thresholds.MaxRetries);
        Assert.Null(thresholds.MaxConnections);
        Assert.False(thresholds.TrackRemaining);
        Assert.Null(thresholds.RetryBudget);
        // The limit belongs to the subset that sets it; the others keep the client's own default (1024).
        Assert.Null(Cluster(snapshot, ReviewsCluster).CircuitBreakers);
        Assert.Null(Cluster(snapshot, ReviewsV2Cluster).CircuitBreakers);
    }

    [Theory]
    [InlineData("{connectionPool: {tcp: {maxConnections: 5}, http: {http1MaxPendingRequests: 7}}}")]
    [InlineData("{connectionPool: {http: {http2MaxRequests: 0}}}")]
    public void Translate_ProxylessWithoutHttp2MaxRequests_SendsNoCircuitBreakers(string trafficPolicy)
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule(trafficPolicy)), Proxyless);

        // As Istio: only max_requests applies to gRPC, and 0 means unset; a sidecar gets its uint32-max thresholds.
        Assert.Null(Cluster(snapshot, ReviewsCluster).CircuitBreakers);
        var sidecar = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule(trafficPolicy)), Sidecar);
        Assert.Equal(uint.MaxValue, Cluster(sidecar, ReviewsCluster).CircuitBreakers.Thresholds.Single().MaxRequests);
    }

    [Fact]
    public void Translate_ProxylessPortLevelHttp2MaxRequests_ReachesThePortsClusters()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{portLevelSettings: [{port: {number: 9080}, connectionPool: {http: {http2MaxRequests: 4}}}]}")), Proxyless);

        Assert.Equal(4u, Cluster(snapshot, ReviewsCluster).CircuitBreakers.Thresholds.Single().MaxRequests);
    }

    [Fact]
    public void Translate_ProxylessOutlierDetection_SendsNoneAndWarnsThatTheClientWillNotEject()
    {
        const string Outlier = "{outlierDetection: {consecutive5xxErrors: 1, consecutiveGatewayErrors: 2, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 100, minHealthPercent: 0}}";

        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule(Outlier)), Proxyless);

        // Istio's gRPC generator sends no outlier_detection, nor the panic threshold that goes with it for Envoy.
        foreach (var name in new[] { ReviewsCluster, ReviewsV1Cluster, ReviewsV2Cluster })
        {
            var cluster = Cluster(snapshot, name);
            Assert.Null(cluster.OutlierDetection);
            Assert.Null(cluster.CommonLbConfig);
        }
        Assert.Contains(snapshot.Warnings, w => w.Contains(ReviewsCluster, StringComparison.Ordinal)
            && w.Contains("outlierDetection has no effect for proxyless gRPC clients", StringComparison.Ordinal)
            && w.Contains("gRFC A50", StringComparison.Ordinal));

        // A sidecar gets Envoy's consecutive-error detectors with success-rate ejection explicitly off: had it been sent
        // to gRPC as is, enforcing_success_rate 0 and no enforcing_failure_percentage would turn both of its algorithms off.
        var sidecar = Cluster(MeshTranslator.Translate(Bookinfo.Index(ReviewsRule(Outlier)), Sidecar), ReviewsCluster).OutlierDetection;
        Assert.Equal(1u, sidecar.Consecutive5Xx);
        Assert.Equal(0u, sidecar.EnforcingSuccessRate);
        Assert.Null(sidecar.EnforcingFailurePercentage);
    }

    private static Cluster Cluster(XdsSnapshot snapshot, string name)
    {
        var resources = snapshot.Get(TypeUrls.Cluster)!.Resources;
        Assert.True(resources.TryGetValue(name, out var resource), $"no cluster {name}; have {string.Join(", ", resources.Keys)}");
        return Assert.IsType<Cluster>(resource.Message);
    }
}
