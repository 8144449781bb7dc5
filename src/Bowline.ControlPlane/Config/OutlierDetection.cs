namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>OutlierDetection</c>.</summary>
/// <param name="Consecutive5xxErrors">Null when absent; 0 explicitly disables 5xx ejection.</param>
/// <param name="MinHealthPercent">Envoy's panic threshold; Istio's default 0 disables panic mode.</param>
internal sealed record OutlierDetection(
    uint? Consecutive5xxErrors,
    uint? ConsecutiveGatewayErrors,
    uint? ConsecutiveLocalOriginFailures,
    bool SplitExternalLocalOriginErrors,
    TimeSpan? Interval,
    TimeSpan? BaseEjectionTime,
    int MaxEjectionPercent,
    int MinHealthPercent);
