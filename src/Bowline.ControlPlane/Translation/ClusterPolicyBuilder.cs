using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Cluster.V3;
using Envoy.Extensions.Upstreams.Http.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// A DestinationRule traffic policy applied to one outbound cluster, as Istio's cluster builder applies it
/// (pilot/pkg/networking/core/cluster_traffic_policy.go): connection pool and circuit breakers, outlier detection,
/// load balancer and retry budget.
/// </summary>
internal static class ClusterPolicyBuilder
{
    /// <summary>Istio's default connect timeout (MeshConfig connectTimeout).</summary>
    public static readonly TimeSpan DefaultConnectTimeout = TimeSpan.FromSeconds(10);

    /// <summary>Istio's retry budget defaults when the DestinationRule gives one without values.</summary>
    private const double DefaultBudgetPercent = 20;
    private const uint DefaultMinRetryConcurrency = 3;

    /// <summary>Applies <paramref name="policy"/> (already resolved for this cluster's subset and port) to an Envoy-style cluster.</summary>
    public static void Apply(Cluster cluster, TrafficPolicy? policy, HttpProtocolOptions options, bool http2, string where, SnapshotBuilder snapshot)
    {
        var pool = policy?.ConnectionPool;
        // Istio always sets thresholds: at uint32 max unless limited, because Envoy's own defaults (1024, 3 retries) cut
        // traffic during endpoint churn before the control plane can react.
        var thresholds = new CircuitBreakers.Types.Thresholds
        {
            MaxConnections = uint.MaxValue,
            MaxPendingRequests = uint.MaxValue,
            MaxRequests = uint.MaxValue,
            MaxRetries = uint.MaxValue,
            TrackRemaining = true,
        };
        if (policy?.RetryBudget is { } budget)
        {
            thresholds.RetryBudget = new CircuitBreakers.Types.Thresholds.Types.RetryBudget
            {
                BudgetPercent = new Envoy.Type.V3.Percent { Value = budget.Percent ?? DefaultBudgetPercent },
                MinRetryConcurrency = budget.MinRetryConcurrency is > 0 ? budget.MinRetryConcurrency.Value : DefaultMinRetryConcurrency,
            };
        }
        TimeSpan? idleTimeout = null;
        TimeSpan? maxConnectionDuration = null;
        var maxRequestsPerConnection = 0;
        var maxConcurrentStreams = 0;
        if (pool?.Http is { } http)
        {
            // Istio cannot tell an explicit 0 from an absent field: both leave the limit off.
            if (http.Http2MaxRequests > 0)
            {
                thresholds.MaxRequests = (uint)http.Http2MaxRequests;
            }
            if (http.Http1MaxPendingRequests > 0)
            {
                thresholds.MaxPendingRequests = (uint)http.Http1MaxPendingRequests;
            }
            if (http.MaxRetries > 0)
            {
                thresholds.MaxRetries = (uint)http.MaxRetries;
            }
            idleTimeout = http.IdleTimeout;
            maxRequestsPerConnection = http.MaxRequestsPerConnection;
            maxConcurrentStreams = http.MaxConcurrentStreams;
        }
        cluster.ConnectTimeout = Duration.FromTimeSpan(pool?.Tcp?.ConnectTimeout ?? DefaultConnectTimeout);
        if (pool?.Tcp is { } tcp)
        {
            if (tcp.MaxConnections > 0)
            {
                thresholds.MaxConnections = (uint)tcp.MaxConnections;
            }
            maxConnectionDuration = tcp.MaxConnectionDuration;
            idleTimeout ??= tcp.IdleTimeout;
            if (tcp.Keepalive is { } keepalive)
            {
                // An empty tcp_keepalive turns SO_KEEPALIVE on with the OS defaults; Envoy takes whole seconds.
                var settings = new Envoy.Config.Core.V3.TcpKeepalive();
                if (keepalive.Probes > 0)
                {
                    settings.KeepaliveProbes = keepalive.Probes;
                }
                if (keepalive.Time is { } time)
                {
                    settings.KeepaliveTime = (uint)time.TotalSeconds;
                }
                if (keepalive.Interval is { } keepaliveInterval)
                {
                    settings.KeepaliveInterval = (uint)keepaliveInterval.TotalSeconds;
                }
                cluster.UpstreamConnectionOptions = new UpstreamConnectionOptions { TcpKeepalive = settings };
            }
        }
        cluster.CircuitBreakers = new CircuitBreakers { Thresholds = { thresholds } };
        if (idleTimeout is not null || maxConnectionDuration is not null || maxRequestsPerConnection > 0)
        {
            options.CommonHttpProtocolOptions = new Envoy.Config.Core.V3.HttpProtocolOptions();
            if (idleTimeout is { } idle)
            {
                options.CommonHttpProtocolOptions.IdleTimeout = Duration.FromTimeSpan(idle);
            }
            if (maxRequestsPerConnection > 0)
            {
                options.CommonHttpProtocolOptions.MaxRequestsPerConnection = (uint)maxRequestsPerConnection;
            }
            if (maxConnectionDuration is { } duration)
            {
                options.CommonHttpProtocolOptions.MaxConnectionDuration = Duration.FromTimeSpan(duration);
            }
        }
        if (http2 && maxConcurrentStreams > 0)
        {
            options.ExplicitHttpConfig.Http2ProtocolOptions.MaxConcurrentStreams = (uint)maxConcurrentStreams;
        }
        ApplyOutlierDetection(cluster, policy?.OutlierDetection);
        ApplyLoadBalancer(cluster, policy?.LoadBalancer, where, snapshot);
        if (LocalityLoadBalancer.UsesLocalityWeights(policy))
        {
            // Envoy honours the LocalityLbEndpoints weights (set by distribute, or summed) only with this set.
            cluster.CommonLbConfig ??= new Cluster.Types.CommonLbConfig();
            cluster.CommonLbConfig.LocalityWeightedLbConfig = new Cluster.Types.CommonLbConfig.Types.LocalityWeightedLbConfig();
        }
    }

    /// <summary>Whether the cluster speaks HTTP/2 upstream: the port's protocol, unless h2UpgradePolicy says otherwise.</summary>
    public static bool UsesHttp2(TrafficPolicy? policy, bool portIsHttp2) => policy?.ConnectionPool?.Http?.H2UpgradePolicy switch
    {
        "UPGRADE" => true,
        "DO_NOT_UPGRADE" => portIsHttp2,
        // DEFAULT follows the mesh's h2UpgradePolicy, whose default is not to upgrade.
        _ => portIsHttp2,
    };

    /// <summary>Istio's outlier detection: only the consecutive-error detectors it configures are enforced; success-rate ejection stays off.</summary>
    private static void ApplyOutlierDetection(Cluster cluster, Config.OutlierDetection? outlier)
    {
        if (outlier is null)
        {
            return;
        }
        var detection = new Envoy.Config.Cluster.V3.OutlierDetection { EnforcingSuccessRate = 0 };
        if (outlier.Consecutive5xxErrors is { } fiveXx)
        {
            detection.Consecutive5Xx = fiveXx;
            detection.EnforcingConsecutive5Xx = fiveXx > 0 ? 100u : 0u;
        }
        if (outlier.ConsecutiveGatewayErrors is { } gateway)
        {
            detection.ConsecutiveGatewayFailure = gateway;
            detection.EnforcingConsecutiveGatewayFailure = gateway > 0 ? 100u : 0u;
        }
        if (outlier.Interval is { } interval)
        {
            detection.Interval = Duration.FromTimeSpan(interval);
        }
        if (outlier.BaseEjectionTime is { } ejection)
        {
            detection.BaseEjectionTime = Duration.FromTimeSpan(ejection);
        }
        if (outlier.MaxEjectionPercent > 0)
        {
            detection.MaxEjectionPercent = (uint)outlier.MaxEjectionPercent;
        }
        if (outlier.SplitExternalLocalOriginErrors)
        {
            detection.SplitExternalLocalOriginErrors = true;
            if (outlier.ConsecutiveLocalOriginFailures is > 0)
            {
                detection.ConsecutiveLocalOriginFailure = outlier.ConsecutiveLocalOriginFailures;
                detection.EnforcingConsecutiveLocalOriginFailure = 100;
            }
            detection.EnforcingLocalOriginSuccessRate = 0;
        }
        cluster.OutlierDetection = detection;
        // Istio's rule: the panic threshold is minHealthPercent, 0 by default, so a service with few endpoints never
        // sends traffic to ejected ones (Envoy's own default is 50%).
        cluster.CommonLbConfig ??= new Cluster.Types.CommonLbConfig();
        cluster.CommonLbConfig.HealthyPanicThreshold = new Envoy.Type.V3.Percent { Value = outlier.MinHealthPercent };
    }

    private static void ApplyLoadBalancer(Cluster cluster, LoadBalancerSettings? lb, string where, SnapshotBuilder snapshot)
    {
        cluster.LbPolicy = lb?.Simple switch
        {
            "ROUND_ROBIN" => Cluster.Types.LbPolicy.RoundRobin,
            "RANDOM" => Cluster.Types.LbPolicy.Random,
            // Istio's default.
            _ => Cluster.Types.LbPolicy.LeastRequest,
        };
        if (lb?.Simple == "PASSTHROUGH")
        {
            snapshot.Warn($"{where}: loadBalancer PASSTHROUGH (original destination) is not supported by Bowline yet; LEAST_REQUEST over the service's endpoints is used");
        }
        ApplySlowStart(cluster, lb, where, snapshot);
        ApplyConsistentHash(cluster, lb?.ConsistentHash);
    }

    /// <summary>
    /// Istio's warmupDurationSecs: the slow start window of ROUND_ROBIN's or LEAST_REQUEST's lb config (Istio's default
    /// policy is LEAST_REQUEST), with Envoy's default aggression and minimum weight. RANDOM, PASSTHROUGH and consistent
    /// hashing have no slow start in Envoy, and Istio drops the field for them; Bowline says so.
    /// </summary>
    private static void ApplySlowStart(Cluster cluster, LoadBalancerSettings? lb, string where, SnapshotBuilder snapshot)
    {
        if (lb?.WarmupDuration is not { } window)
        {
            return;
        }
        if (lb.ConsistentHash is not null || lb.Simple is "RANDOM" or "PASSTHROUGH")
        {
            var policy = lb.ConsistentHash is not null ? "consistentHash" : lb.Simple;
            snapshot.Warn($"{where}: warmupDurationSecs has no effect with loadBalancer {policy} (as in Istio, slow start applies to ROUND_ROBIN and LEAST_REQUEST only); remove it or use one of those");
            return;
        }
        var slowStart = new Cluster.Types.SlowStartConfig { SlowStartWindow = Duration.FromTimeSpan(window) };
        if (cluster.LbPolicy == Cluster.Types.LbPolicy.RoundRobin)
        {
            cluster.RoundRobinLbConfig = new Cluster.Types.RoundRobinLbConfig { SlowStartConfig = slowStart };
        }
        else
        {
            cluster.LeastRequestLbConfig = new Cluster.Types.LeastRequestLbConfig { SlowStartConfig = slowStart };
        }
    }

    /// <summary>Istio's ring hash and Maglev settings; without either, the deprecated ring size or Envoy's 1024 applies.</summary>
    public static void ApplyConsistentHash(Cluster cluster, ConsistentHash? hash)
    {
        if (hash is null)
        {
            return;
        }
        if (hash.Maglev)
        {
            cluster.LbPolicy = Cluster.Types.LbPolicy.Maglev;
            if (hash.MaglevTableSize is { } size && size > 0)
            {
                cluster.MaglevLbConfig = new Cluster.Types.MaglevLbConfig { TableSize = size };
            }
            return;
        }
        cluster.LbPolicy = Cluster.Types.LbPolicy.RingHash;
        if (hash.RingHash)
        {
            if (hash.MinimumRingSize is { } ring && ring > 0)
            {
                cluster.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = ring };
            }
            return;
        }
        cluster.RingHashLbConfig = new Cluster.Types.RingHashLbConfig { MinimumRingSize = hash.MinimumRingSize ?? 1024 };
    }

    /// <summary>
    /// The subset of a policy a proxyless gRPC client honours (Istio's gRPC generator, pilot/pkg/networking/grpcgen):
    /// ring hash (gRFC A42) and <c>http2MaxRequests</c> as the default-priority threshold's <c>max_requests</c> alone
    /// (gRFC A32: the client fails calls beyond it with UNAVAILABLE; with no threshold it allows 1024). Everything else
    /// is named in a warning rather than sent and ignored.
    /// </summary>
    public static void ApplyProxyless(Cluster cluster, TrafficPolicy? policy, string where, SnapshotBuilder snapshot)
    {
        if (policy?.LoadBalancer?.ConsistentHash is { } hash)
        {
            if (hash.Maglev)
            {
                snapshot.Warn($"{where}: proxyless gRPC clients have no Maglev (gRFC A42 is ring hash); ring hash is used for them");
                ApplyConsistentHash(cluster, hash with { Maglev = false, RingHash = true, MinimumRingSize = null });
            }
            else
            {
                ApplyConsistentHash(cluster, hash);
            }
        }
        else if (policy?.LoadBalancer?.Simple is "RANDOM" or "PASSTHROUGH")
        {
            snapshot.Warn($"{where}: proxyless gRPC clients cannot use loadBalancer {policy.LoadBalancer.Simple}; they balance round robin");
        }
        if (policy?.ConnectionPool?.Http is { Http2MaxRequests: > 0 } http)
        {
            cluster.CircuitBreakers = new CircuitBreakers { Thresholds = { new CircuitBreakers.Types.Thresholds { MaxRequests = (uint)http.Http2MaxRequests } } };
        }
        if (policy?.LoadBalancer?.WarmupDuration is not null)
        {
            snapshot.Warn($"{where}: proxyless gRPC clients have no slow start; warmupDurationSecs has no effect for them");
        }
        if (policy?.OutlierDetection is not null)
        {
            // gRFC A50: gRPC ejects by success rate and failure percentage only; Istio's outlierDetection configures
            // neither (its consecutive-error detectors act on HTTP codes gRPC does not see), and Istio's gRPC generator
            // sends no outlier_detection. Sent anyway it would change nothing: with enforcing_success_rate 0 and no
            // enforcing_failure_percentage, a gRPC client runs neither algorithm.
            snapshot.Warn($"{where}: outlierDetection has no effect for proxyless gRPC clients: they eject only by success rate or failure percentage (gRFC A50), which Istio's outlierDetection does not configure, so, as in Istio, none is sent and an endpoint that answers with errors keeps its share of their calls; retries (retryOn: unavailable) are what moves those calls elsewhere");
        }
    }
}
