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
        MeshConfigMap = resources.OfType<MeshConfigMap>().FirstOrDefault();
        Telemetry = MeshTelemetry.Off;
    }

    /// <summary>Istio's <c>istio</c> ConfigMap of <c>istio-system</c>, when the config has one.</summary>
    public MeshConfigMap? MeshConfigMap { get; }

    /// <summary>The same resources and generation under other security settings (the control plane's options).</summary>
    public MeshConfig WithSecurity(MeshSecurity security) => security == Security ? this : new MeshConfig(Resources, Generation, security) { Jwks = Jwks, Telemetry = _optionsTelemetry };

    /// <summary>The same resources and generation under the control plane's mesh-wide telemetry options (the mesh ConfigMap lays over them).</summary>
    public MeshConfig WithTelemetry(MeshTelemetry telemetry) => telemetry == _optionsTelemetry ? this : new MeshConfig(Resources, Generation, Security) { Jwks = Jwks, Telemetry = telemetry };

    /// <summary>The same resources with the JWKS the control plane fetched, as generation <paramref name="generation"/> (a new one when only keys changed, so proxies are pushed).</summary>
    public MeshConfig WithJwks(JwksSnapshot jwks, long generation) => new(Resources, generation, Security) { Jwks = jwks, Telemetry = _optionsTelemetry };

    /// <summary>Every Telemetry resource, by namespace and name.</summary>
    public IReadOnlyList<Telemetry> Telemetries { get; }

    /// <summary>
    /// The Telemetry resources that shape a workload's access logging, in Istio's merge order: the root namespace's
    /// (no selector), its namespace's (no selector), then the one of its namespace whose selector matches it; each
    /// layer overrides the one before, per provider and side.
    /// </summary>
    public IReadOnlyList<Telemetry> AccessLoggingLayers(string ns, IReadOnlyDictionary<string, string> labels) => Layers(ns, labels, t => t.AccessLogging.Count > 0);

    /// <summary>Istio's layers of Telemetry for one aspect: the root namespace's, the namespace's, the workload's (selector), each the first of its kind.</summary>
    private List<Telemetry> Layers(string ns, IReadOnlyDictionary<string, string> labels, Func<Telemetry, bool> has)
    {
        var relevant = Telemetries.Where(has).ToList();
        return new[]
        {
            relevant.FirstOrDefault(t => t.Meta.Namespace == MeshSecurity.RootNamespace && t.Selector.Count == 0),
            ns == MeshSecurity.RootNamespace ? null : relevant.FirstOrDefault(t => t.Meta.Namespace == ns && t.Selector.Count == 0),
            relevant.FirstOrDefault(t => t.Meta.Namespace == ns && t.Selector.Count > 0 && Registry.ServiceIndex.Matches(labels, t.Selector)),
        }.OfType<Telemetry>().ToList();
    }

    /// <summary>
    /// Istio's Telemetries.Tracing for one side of a workload: meshConfig's first default provider, then each layer's
    /// entries for that side set the provider (the first named), reporting, sampling, tags and the request-id draw.
    /// Null when neither the mesh nor any layer says anything about tracing (no tracing config is sent).
    /// </summary>
    public TracingSpec? TracingFor(string ns, IReadOnlyDictionary<string, string> labels, TelemetryMode side)
    {
        var layers = Layers(ns, labels, t => t.Tracing.Count > 0);
        if (layers.Count == 0 && Telemetry.DefaultTracing.Count == 0)
        {
            return null;
        }
        var spec = new TracingSpec(Telemetry.DefaultTracing.FirstOrDefault(), false, null, [], UseRequestIdForTraceSampling: true, EnableIstioTags: true);
        foreach (var entry in layers.SelectMany(t => t.Tracing).Where(e => e.Mode == TelemetryMode.ClientAndServer || e.Mode == side))
        {
            spec = spec with
            {
                Provider = entry.Provider ?? spec.Provider,
                Disabled = entry.DisableSpanReporting ?? spec.Disabled,
                RandomSamplingPercentage = entry.RandomSamplingPercentage ?? spec.RandomSamplingPercentage,
                CustomTags = entry.CustomTags ?? spec.CustomTags,
                UseRequestIdForTraceSampling = entry.UseRequestIdForTraceSampling ?? spec.UseRequestIdForTraceSampling,
                EnableIstioTags = entry.EnableIstioTags ?? spec.EnableIstioTags,
            };
        }
        return spec.Provider is null ? spec with { Disabled = true } : spec;
    }

    /// <summary>
    /// Whether Istio's standard metrics are recorded on this side of the workload: on by default, as in Istio; the
    /// root, namespace and workload Telemetry layers' <c>metrics</c> overrides for that side apply in that order.
    /// </summary>
    public bool MetricsEnabled(string ns, IReadOnlyDictionary<string, string> labels, TelemetryMode side)
    {
        var layers = Layers(ns, labels, t => t.Metrics.Count > 0);
        var enabled = true;
        foreach (var toggle in layers.SelectMany(t => t.Metrics))
        {
            if (toggle.Mode == TelemetryMode.ClientAndServer || toggle.Mode == side)
            {
                enabled = !toggle.Disabled;
            }
        }
        return enabled;
    }

    private readonly MeshTelemetry _optionsTelemetry = MeshTelemetry.Off;
    private readonly MeshTelemetry _telemetry = MeshTelemetry.Off;

    /// <summary>
    /// Istio's mesh-wide telemetry settings: the control plane's options (off unless given an access log file), with
    /// the mesh ConfigMap's settings laid over them. Set to the options; read back with the ConfigMap applied.
    /// </summary>
    public MeshTelemetry Telemetry
    {
        get => _telemetry;
        init
        {
            _optionsTelemetry = value;
            _telemetry = MeshConfigMap?.Apply(value) ?? value;
        }
    }

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
