using Bowline.ControlPlane.Security;

namespace Bowline.ControlPlane.Config;

/// <summary>
/// An immutable, validated set of every config object the control plane serves from. A new instance is built for every
/// accepted change; readers hold on to the one they started with.
/// </summary>
internal sealed class MeshConfig
{
    public static readonly MeshConfig Empty = new([], 0);

    /// <param name="security">The control plane's mesh-wide security settings; mesh mTLS off when not given.</param>
    public MeshConfig(IReadOnlyList<MeshResource> resources, long generation, MeshSecurity? security = null)
    {
        Generation = generation;
        Security = security ?? MeshSecurity.Off;
        Resources = resources;
        Services = resources.OfType<KubernetesService>().ToList();
        ServiceEntries = resources.OfType<ServiceEntry>().ToList();
        WorkloadEntries = resources.OfType<WorkloadEntry>().ToList();
        VirtualServices = resources.OfType<VirtualService>().ToList();
        DestinationRules = resources.OfType<DestinationRule>().ToList();
        Gateways = resources.OfType<Gateway>().ToList();
        Workloads = resources.OfType<Workload>().ToList();
        HealthChecks = resources.OfType<HealthCheck>().OrderBy(r => r.Meta.Namespace, StringComparer.Ordinal).ThenBy(r => r.Meta.Name, StringComparer.Ordinal).ToList();
        RateLimits = resources.OfType<RateLimit>().OrderBy(r => r.Meta.Namespace, StringComparer.Ordinal).ThenBy(r => r.Meta.Name, StringComparer.Ordinal).ToList();
        PeerAuthentication = new PeerAuthenticationPolicies(resources.OfType<PeerAuthentication>(), Security);
        Authorization = new AuthorizationPolicies(resources.OfType<AuthorizationPolicy>());
        Credentials = new CredentialSecrets(resources.OfType<CredentialSecret>());
        RequestAuthentication = new RequestAuthenticationPolicies(resources.OfType<RequestAuthentication>());
        Telemetries = resources.OfType<Telemetry>().OrderBy(t => t.Meta.Namespace, StringComparer.Ordinal).ThenBy(t => t.Meta.Name, StringComparer.Ordinal).ToList();
    }

    /// <summary>The same resources and generation under other security settings (the control plane's options).</summary>
    public MeshConfig WithSecurity(MeshSecurity security) => security == Security ? this : new MeshConfig(Resources, Generation, security) { Jwks = Jwks, Telemetry = Telemetry };

    /// <summary>The same resources and generation under other mesh-wide telemetry settings (the control plane's options).</summary>
    public MeshConfig WithTelemetry(MeshTelemetry telemetry) => telemetry == Telemetry ? this : new MeshConfig(Resources, Generation, Security) { Jwks = Jwks, Telemetry = telemetry };

    /// <summary>The same resources with the JWKS the control plane fetched, as generation <paramref name="generation"/> (a new one when only keys changed, so proxies are pushed).</summary>
    public MeshConfig WithJwks(JwksSnapshot jwks, long generation) => new(Resources, generation, Security) { Jwks = jwks, Telemetry = Telemetry };

    /// <summary>Every Telemetry resource, by namespace and name.</summary>
    public IReadOnlyList<Telemetry> Telemetries { get; }

    /// <summary>
    /// The Telemetry resources that shape a workload's access logging, in Istio's merge order: the root namespace's
    /// (no selector), its namespace's (no selector), then the one of its namespace whose selector matches it; each
    /// layer overrides the one before, per provider and side.
    /// </summary>
    public IReadOnlyList<Telemetry> AccessLoggingLayers(string ns, IReadOnlyDictionary<string, string> labels)
    {
        var logging = Telemetries.Where(t => t.AccessLogging.Count > 0).ToList();
        return new[]
        {
            logging.FirstOrDefault(t => t.Meta.Namespace == MeshSecurity.RootNamespace && t.Selector.Count == 0),
            ns == MeshSecurity.RootNamespace ? null : logging.FirstOrDefault(t => t.Meta.Namespace == ns && t.Selector.Count == 0),
            logging.FirstOrDefault(t => t.Meta.Namespace == ns && t.Selector.Count > 0 && Registry.ServiceIndex.Matches(labels, t.Selector)),
        }.OfType<Telemetry>().ToList();
    }

    /// <summary>
    /// Whether Istio's standard metrics are recorded on this side of the workload: on by default, as in Istio; the
    /// root, namespace and workload Telemetry layers' <c>metrics</c> overrides for that side apply in that order.
    /// </summary>
    public bool MetricsEnabled(string ns, IReadOnlyDictionary<string, string> labels, TelemetryMode side)
    {
        var withMetrics = Telemetries.Where(t => t.Metrics.Count > 0).ToList();
        var layers = new[]
        {
            withMetrics.FirstOrDefault(t => t.Meta.Namespace == MeshSecurity.RootNamespace && t.Selector.Count == 0),
            ns == MeshSecurity.RootNamespace ? null : withMetrics.FirstOrDefault(t => t.Meta.Namespace == ns && t.Selector.Count == 0),
            withMetrics.FirstOrDefault(t => t.Meta.Namespace == ns && t.Selector.Count > 0 && Registry.ServiceIndex.Matches(labels, t.Selector)),
        };
        var enabled = true;
        foreach (var toggle in layers.OfType<Telemetry>().SelectMany(t => t.Metrics))
        {
            if (toggle.Mode == TelemetryMode.ClientAndServer || toggle.Mode == side)
            {
                enabled = !toggle.Disabled;
            }
        }
        return enabled;
    }

    /// <summary>Istio's meshConfig access log settings; off unless the control plane was given a file.</summary>
    public MeshTelemetry Telemetry { get; init; } = MeshTelemetry.Off;

    /// <summary>Every RequestAuthentication, scoped per workload with Istio's rules.</summary>
    public RequestAuthenticationPolicies RequestAuthentication { get; }

    /// <summary>The fetched JWKS of the RequestAuthentication rules with a jwksUri (or only an issuer); empty until fetched.</summary>
    public JwksSnapshot Jwks { get; init; } = JwksSnapshot.Empty;

    public MeshSecurity Security { get; }

    /// <summary>Every PeerAuthentication, combined with Istio's precedence.</summary>
    public PeerAuthenticationPolicies PeerAuthentication { get; }

    /// <summary>Every AuthorizationPolicy, scoped as Istio scopes them.</summary>
    public AuthorizationPolicies Authorization { get; }

    /// <summary>Every TLS Secret (gateway credentials), by namespace and name.</summary>
    public CredentialSecrets Credentials { get; }

    /// <summary>Increases with every accepted change; shows in logs and the CLI.</summary>
    public long Generation { get; }

    public IReadOnlyList<MeshResource> Resources { get; }

    public IReadOnlyList<KubernetesService> Services { get; }

    public IReadOnlyList<ServiceEntry> ServiceEntries { get; }

    public IReadOnlyList<WorkloadEntry> WorkloadEntries { get; }

    public IReadOnlyList<VirtualService> VirtualServices { get; }

    public IReadOnlyList<DestinationRule> DestinationRules { get; }

    public IReadOnlyList<Gateway> Gateways { get; }

    public IReadOnlyList<Workload> Workloads { get; }

    /// <summary>Ordered by namespace and name: where two apply to the same cluster or route, the first wins.</summary>
    public IReadOnlyList<HealthCheck> HealthChecks { get; }

    /// <summary>Ordered by namespace and name: where two select the same route, the first wins.</summary>
    public IReadOnlyList<RateLimit> RateLimits { get; }
}
