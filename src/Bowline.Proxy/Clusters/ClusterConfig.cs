using Bowline.Proxy.Clusters.LoadBalancing;
using Bowline.Proxy.Clusters.Outlier;

namespace Bowline.Proxy.Clusters;

/// <summary>Which HTTP version a cluster speaks upstream (Envoy's <c>HttpProtocolOptions</c>).</summary>
internal enum UpstreamProtocol
{
    Http1,
    Http2,

    /// <summary>Whatever the client spoke (Istio's choice for plain HTTP ports).</summary>
    Downstream,
}

/// <summary>
/// A cluster's compiled CDS resource: how to reach its hosts (protocol, pool), how to balance, its circuit-breaker
/// limits and outlier-detection settings. Immutable; replaced whole when the Cluster resource changes. The pool and the
/// balancer are shared with the previous config when their settings did not change, so a push neither drops
/// connections nor resets round-robin.
/// </summary>
internal sealed class ClusterConfig(
    Envoy.Config.Cluster.V3.Cluster source,
    UpstreamProtocol protocol,
    UpstreamPool invoker,
    ILoadBalancer balancer,
    CircuitBreakerLimits limits,
    OutlierDetectionConfig? outlierDetection,
    HostSetPolicy hostPolicy,
    Dns.DnsSettings? dns = null,
    Health.HealthCheckConfig? healthCheck = null,
    int maxRequestsPerConnection = 0,
    Tls.UpstreamTransport? transport = null,
    PoolSettings? pool = null)
{
    /// <summary>How connections to the hosts are opened (connect timeout, keepalive); the TCP proxy connects with it too.</summary>
    public PoolSettings Pool { get; } = pool ?? PoolSettings.Default;

    /// <summary>The cluster's transport sockets (TLS per endpoint); null when every endpoint is plaintext.</summary>
    public Tls.UpstreamTransport? Transport { get; } = transport;

    /// <summary>For STRICT_DNS and LOGICAL_DNS clusters: what to resolve; the hosts then come from the resolver, not from EDS.</summary>
    public Dns.DnsSettings? Dns { get; } = dns;

    /// <summary>Null when the cluster has no active health check.</summary>
    public Health.HealthCheckConfig? HealthCheck { get; } = healthCheck;

    /// <summary>Envoy's max_requests_per_connection; 0 means unlimited.</summary>
    public int MaxRequestsPerConnection { get; } = maxRequestsPerConnection;

    /// <summary>
    /// The service the cluster is for, from its <c>istio</c> filter metadata (<c>services[0]</c>: host, name, namespace),
    /// as Istio's clusters carry it for the stats filter; null when the control plane named none.
    /// </summary>
    public Telemetry.ServiceLabels? Service { get; } = ServiceOf(source);

    private static Telemetry.ServiceLabels? ServiceOf(Envoy.Config.Cluster.V3.Cluster cluster)
    {
        if (cluster.Metadata?.FilterMetadata.TryGetValue("istio", out var istio) != true
            || !istio!.Fields.TryGetValue("services", out var services) || services.ListValue is not { Values.Count: > 0 } list
            || list.Values[0].StructValue is not { } service)
        {
            return null;
        }
        string Field(string name) => service.Fields.TryGetValue(name, out var v) ? v.StringValue : "";
        return Field("host") is { Length: > 0 } host ? Telemetry.ServiceLabels.Of(host, Field("name"), Field("namespace")) : null;
    }

    /// <summary>The resource this was compiled from; an identical resource in a later update reuses this object.</summary>
    public Envoy.Config.Cluster.V3.Cluster Source { get; } = source;

    public string Name => Source.Name;

    public UpstreamProtocol Protocol { get; } = protocol;

    public UpstreamPool Invoker { get; } = invoker;

    public ILoadBalancer Balancer { get; } = balancer;

    public CircuitBreakerLimits Limits { get; } = limits;

    /// <summary>Null when the cluster has no outlier_detection.</summary>
    public OutlierDetectionConfig? OutlierDetection { get; } = outlierDetection;

    /// <summary>How host sets are built under this config: panic threshold, hashing structure, locality weighting, slow start.</summary>
    public HostSetPolicy HostPolicy { get; } = hostPolicy;
}
