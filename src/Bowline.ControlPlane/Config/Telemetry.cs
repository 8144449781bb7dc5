namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>WorkloadMode</c>: which side of a connection an access log entry applies to.</summary>
internal enum TelemetryMode
{
    /// <summary>Istio's default: both.</summary>
    ClientAndServer,

    /// <summary>The workload as the source (its outbound listener); a gateway counts as a client.</summary>
    Client,

    /// <summary>The workload as the destination (its inbound listener).</summary>
    Server,
}

/// <summary>A comparison of the response code, the part of Istio's CEL filter expressions Bowline translates (to Envoy's status_code_filter).</summary>
internal sealed record ResponseCodeCondition(string Op, int Value);

/// <summary>
/// A filter expression in the shape Bowline translates: comparisons of <c>response.code</c> joined by <c>&amp;&amp;</c>
/// or <c>||</c> (one of them, not both): <c>response.code &gt;= 400</c>, <c>response.code == 503 || response.code == 504</c>.
/// </summary>
internal sealed record AccessLogCondition(IReadOnlyList<ResponseCodeCondition> Comparisons, bool All, string Expression);

/// <summary>One <c>accessLogging</c> entry of a Telemetry resource.</summary>
/// <param name="Providers">Provider names; empty means the mesh's default provider (Istio's <c>envoy</c>).</param>
internal sealed record AccessLogging(IReadOnlyList<string> Providers, bool Disabled, TelemetryMode Mode, AccessLogCondition? Filter);

/// <summary>
/// Istio's <c>telemetry.istio.io/v1 Telemetry</c>: access logging for the mesh (root namespace, no selector), a
/// namespace, or the workloads a selector picks, merged as Istio merges them: meshConfig's file is the default, and
/// root, namespace and workload layers each set or remove a provider per side.
/// </summary>
internal sealed record Telemetry(ResourceMeta Meta, IReadOnlyDictionary<string, string> Selector, IReadOnlyList<AccessLogging> AccessLogging) : MeshResource(Meta)
{
    /// <summary>Its <c>metrics</c> overrides that switch all of Istio's standard metrics on or off, in order.</summary>
    public IReadOnlyList<MetricsToggle> Metrics { get; init; } = [];

    /// <summary>Its <c>tracing</c> entries, in order.</summary>
    public IReadOnlyList<TracingEntry> Tracing { get; init; } = [];
}

/// <summary>
/// One <c>metrics[].overrides[]</c> entry of the shape Bowline applies: every metric (<c>match.metric</c> absent or
/// <c>ALL_METRICS</c>) of the built-in <c>prometheus</c> provider, on one side or both, <c>disabled</c> or not.
/// </summary>
internal sealed record MetricsToggle(TelemetryMode Mode, bool Disabled);

/// <summary>A span tag of Telemetry <c>tracing.customTags</c>: a literal, an environment variable or a request header.</summary>
internal sealed record TracingTag(string Name, string? Literal, string? Environment, string? Header, string? Default);

/// <summary>One <c>tracing</c> entry of a Telemetry resource; a null field leaves the layer below as it was.</summary>
/// <param name="Provider">The first provider named; null keeps the one below (meshConfig's default).</param>
internal sealed record TracingEntry(string? Provider, TelemetryMode Mode)
{
    public bool? DisableSpanReporting { get; init; }

    public double? RandomSamplingPercentage { get; init; }

    /// <summary>Replaces the layer below's tags as a whole, as Istio merges them.</summary>
    public IReadOnlyList<TracingTag>? CustomTags { get; init; }

    public bool? UseRequestIdForTraceSampling { get; init; }

    public bool? EnableIstioTags { get; init; }
}

/// <summary>
/// The tracing one side of a workload gets once the mesh's default provider and its Telemetry layers are merged
/// (Istio's TracingSpec): null provider or <see cref="Disabled"/> means no tracing config at all.
/// </summary>
internal sealed record TracingSpec(string? Provider, bool Disabled, double? RandomSamplingPercentage, IReadOnlyList<TracingTag> CustomTags, bool UseRequestIdForTraceSampling, bool EnableIstioTags);

/// <summary>
/// Istio's mesh config as the <c>istio</c> ConfigMap of <c>istio-system</c> holds it (<c>data.mesh</c>, YAML): the
/// telemetry settings it gives; a null field leaves the control plane's own option in force.
/// </summary>
internal sealed record MeshConfigMap(ResourceMeta Meta) : MeshResource(Meta)
{
    public string? AccessLogFile { get; init; }

    public AccessLogEncoding? AccessLogEncoding { get; init; }

    public string? AccessLogFormat { get; init; }

    public IReadOnlyDictionary<string, ExtensionProvider> Providers { get; init; } = new Dictionary<string, ExtensionProvider>();

    public IReadOnlyList<string> DefaultTracing { get; init; } = [];

    public IReadOnlyList<string> DefaultAccessLogging { get; init; } = [];

    public double? TraceSampling { get; init; }

    public int? MaxPathTagLength { get; init; }

    public IReadOnlyList<TracingTag>? ProxyCustomTags { get; init; }

    /// <summary>The control plane's options with what this ConfigMap sets laid over them.</summary>
    public MeshTelemetry Apply(MeshTelemetry options) => new(AccessLogFile ?? options.AccessLogFile, AccessLogEncoding ?? options.Encoding, AccessLogFormat ?? options.Format)
    {
        Providers = Providers,
        DefaultTracing = DefaultTracing,
        DefaultAccessLogging = DefaultAccessLogging,
        TraceSampling = TraceSampling ?? options.TraceSampling,
        MaxPathTagLength = MaxPathTagLength ?? options.MaxPathTagLength,
        ProxyCustomTags = ProxyCustomTags ?? options.ProxyCustomTags,
    };
}
