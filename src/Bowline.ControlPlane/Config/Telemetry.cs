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
}

/// <summary>
/// One <c>metrics[].overrides[]</c> entry of the shape Bowline applies: every metric (<c>match.metric</c> absent or
/// <c>ALL_METRICS</c>) of the built-in <c>prometheus</c> provider, on one side or both, <c>disabled</c> or not.
/// </summary>
internal sealed record MetricsToggle(TelemetryMode Mode, bool Disabled);
