using System.Net;

namespace Bowline.Proxy;

/// <summary>A container port's inbound path in explicit mode: the sidecar accepts on <see cref="ListenPort"/> and forwards to the app on <see cref="AppPort"/>.</summary>
public sealed record InboundPortMapping(int ContainerPort, int ListenPort, int AppPort);

/// <summary>
/// The proxy's bootstrap: who it is (sent to the control plane as the xDS node) and where the control plane is.
/// Everything else — listeners, routes, clusters — arrives over xDS.
/// </summary>
public sealed class ProxyOptions
{
    /// <summary>The xDS node id, Istio style: <c>sidecar~10.0.0.1~reviews-v1.default~default.svc.cluster.local</c>; <c>router~...</c> for a gateway.</summary>
    public required string NodeId { get; init; }

    /// <summary>The node's cluster (Envoy's service cluster), Istio sets the workload's app name.</summary>
    public string NodeCluster { get; init; } = "";

    /// <summary>Istio's <c>CLUSTER_ID</c>: the cluster the workload runs in, reported as <c>source_cluster</c>/<c>destination_cluster</c>.</summary>
    public string ClusterId { get; init; } = Telemetry.WorkloadMetadata.DefaultCluster;

    public required string WorkloadName { get; init; }

    public string Namespace { get; init; } = "default";

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public string ServiceAccount { get; init; } = "default";

    /// <summary>
    /// The control plane's xDS address: plaintext <c>http://127.0.0.1:15010</c>, or with
    /// <see cref="ControlPlaneRootsPem"/> its TLS port <c>https://127.0.0.1:15012</c>, where ADS runs over mutual TLS
    /// with the workload certificate.
    /// </summary>
    public required Uri XdsAddress { get; init; }

    /// <summary>
    /// The mesh root(s), PEM, that the control plane's TLS certificate must chain to (Istio's root-cert.pem for
    /// istiod). Set, the proxy reaches the CA and ADS over TLS and <see cref="XdsAddress"/> must be <c>https</c>; null,
    /// it speaks plaintext.
    /// </summary>
    public string? ControlPlaneRootsPem { get; init; }

    /// <summary>The DNS name the control plane's certificate must carry (Istio's <c>ISTIOD_SAN</c>), whatever address is dialled.</summary>
    public string ControlPlaneServerName { get; init; } = "istiod.istio-system.svc";

    /// <summary>Admin port on loopback (Envoy's 15000): <c>/ready</c>, <c>/config_dump</c>, <c>/clusters</c>, <c>/stats</c>. 0 picks a free port.</summary>
    public int AdminPort { get; init; } = 15000;

    /// <summary>
    /// Istio's 15020: merged Prometheus metrics (<c>/stats/prometheus</c>) and readiness (<c>/healthz/ready</c>), bound on
    /// <see cref="BindAddress"/> so a scraper can reach it. 0 picks a free port; null (the default here; the command line defaults to 15020) serves none.
    /// </summary>
    public int? StatusPort { get; init; }

    /// <summary>
    /// The app's own Prometheus endpoint (Istio's <c>prometheus.io/scrape</c>, <c>port</c> and <c>path</c> annotations
    /// say where), merged into the status port's metrics; null when the workload declares none.
    /// </summary>
    public Uri? AppMetrics { get; init; }

    /// <summary>The address the control plane should bind this proxy's listeners to.</summary>
    public IPAddress BindAddress { get; init; } = IPAddress.Loopback;

    /// <summary>Explicit mode: the port apps use as their HTTP proxy (<c>HTTP_PROXY</c>). Null for a gateway.</summary>
    public int? OutboundPort { get; init; }

    public IReadOnlyList<InboundPortMapping> InboundPorts { get; init; } = [];

    public bool Gateway { get; init; }

    /// <summary>
    /// Where the workload runs, Istio's <c>region/zone/subzone</c> (empty parts allowed); sent as the xDS node's
    /// locality so the control plane can prefer endpoints nearby and fail over by distance.
    /// </summary>
    public string Locality { get; init; } = "";

    /// <summary>
    /// Explicit mode: a TCP service port (<c>mysqldb.default.svc.cluster.local:3306</c>) to the local port the app
    /// dials for it; the control plane sends a TCP proxy listener there.
    /// </summary>
    public IReadOnlyDictionary<string, int> OutboundTcpPorts { get; init; } = new Dictionary<string, int>();

    /// <summary>Gateway: a Gateway server port to the local port it binds (<c>8080 → 18080</c>).</summary>
    public IReadOnlyDictionary<int, int> GatewayPorts { get; init; } = new Dictionary<int, int>();

    /// <summary>An xDS stream that owes a request or a response and delivers nothing for this long is reopened (and counted).</summary>
    public TimeSpan XdsStallTimeout { get; init; } = Xds.AdsProgressOptions.DefaultStallTimeout;

    /// <summary>How long a removed listener, or the whole proxy at shutdown, lets in-flight requests finish.</summary>
    public TimeSpan DrainTimeout { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>How often queued spans are exported at the latest (Envoy's <c>tracing.opentelemetry.flush_interval_ms</c>, 5 s); every 512 spans they are sent sooner.</summary>
    public TimeSpan TraceFlushInterval { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Reconnect backoff to the control plane: starts here, doubles, with full jitter.</summary>
    public TimeSpan InitialBackoff { get; init; } = TimeSpan.FromMilliseconds(250);

    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(15);

    /// <summary>
    /// The bootstrap credential the workload agent proves its identity with when it asks the CA for a certificate
    /// (the per-workload token <c>bowline up</c> hands over; a Kubernetes service-account token in a cluster). Null:
    /// no workload certificate, so no mesh mTLS.
    /// </summary>
    public string? CaToken { get; init; }

    /// <summary>The CA's address (Istio's IstioCertificateService); defaults to the xDS address.</summary>
    public Uri? CaAddress { get; init; }

    /// <summary>The SPIFFE trust domain of this workload's identity.</summary>
    public string TrustDomain { get; init; } = "cluster.local";

    /// <summary>The lifetime the agent asks for; the CA may cap it. Renewal happens at half of what was granted.</summary>
    public TimeSpan CertificateTtl { get; init; } = TimeSpan.FromHours(24);
}
