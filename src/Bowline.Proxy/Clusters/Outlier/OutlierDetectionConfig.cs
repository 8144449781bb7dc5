using Bowline.Proxy.Configuration;

namespace Bowline.Proxy.Clusters.Outlier;

/// <summary>
/// Envoy's <c>outlier_detection</c>, compiled with Envoy's defaults. Percentages are 0-100; a threshold whose
/// enforcing percentage is 0 is tracked but never ejects. Success-rate and failure-percentage detection are not
/// implemented, so their fields are refused rather than ignored.
/// </summary>
internal sealed record OutlierDetectionConfig(
    int Consecutive5xx,
    int Enforcing5xx,
    int ConsecutiveGatewayFailure,
    int EnforcingGatewayFailure,
    int ConsecutiveLocalOriginFailure,
    int EnforcingLocalOriginFailure,
    bool SplitExternalLocalOriginErrors,
    TimeSpan Interval,
    TimeSpan BaseEjectionTime,
    TimeSpan MaxEjectionTime,
    int MaxEjectionPercent)
{
    public static OutlierDetectionConfig Compile(Envoy.Config.Cluster.V3.OutlierDetection proto, string where)
    {
        XdsFields.Check(proto, where, "consecutive_5xx", "enforcing_consecutive_5xx", "consecutive_gateway_failure", "enforcing_consecutive_gateway_failure",
            "consecutive_local_origin_failure", "enforcing_consecutive_local_origin_failure", "split_external_local_origin_errors", "interval",
            "base_ejection_time", "max_ejection_time", "max_ejection_percent",
            // Success-rate detection is off when its enforcement is 0, which is how Istio always sends it.
            "enforcing_success_rate", "enforcing_local_origin_success_rate", "enforcing_failure_percentage", "enforcing_failure_percentage_local_origin");
        // Envoy's default for the success-rate enforcements is 100; only an explicit 0 switches them off. The local-origin
        // one matters only when local-origin errors are split out.
        if (proto.EnforcingSuccessRate != 0)
        {
            throw new ProxyConfigException($"{where}: success-rate outlier detection is not supported; set enforcing_success_rate to 0");
        }
        if (proto.SplitExternalLocalOriginErrors && proto.EnforcingLocalOriginSuccessRate != 0)
        {
            throw new ProxyConfigException($"{where}: local-origin success-rate outlier detection is not supported; set enforcing_local_origin_success_rate to 0");
        }
        if (proto.EnforcingFailurePercentage is > 0 || proto.EnforcingFailurePercentageLocalOrigin is > 0)
        {
            throw new ProxyConfigException($"{where}: failure-percentage outlier detection is not supported; leave enforcing_failure_percentage at 0");
        }
        var interval = Positive(proto.Interval, TimeSpan.FromSeconds(10), where, "interval");
        var baseEjection = Positive(proto.BaseEjectionTime, TimeSpan.FromSeconds(30), where, "base_ejection_time");
        var maxEjection = Positive(proto.MaxEjectionTime, TimeSpan.FromSeconds(300), where, "max_ejection_time");
        return new OutlierDetectionConfig(
            (int)(proto.Consecutive5Xx ?? 5),
            Percent(proto.EnforcingConsecutive5Xx, 100, where, "enforcing_consecutive_5xx"),
            (int)(proto.ConsecutiveGatewayFailure ?? 5),
            Percent(proto.EnforcingConsecutiveGatewayFailure, 0, where, "enforcing_consecutive_gateway_failure"),
            (int)(proto.ConsecutiveLocalOriginFailure ?? 5),
            Percent(proto.EnforcingConsecutiveLocalOriginFailure, 100, where, "enforcing_consecutive_local_origin_failure"),
            proto.SplitExternalLocalOriginErrors,
            interval,
            baseEjection,
            Max(maxEjection, baseEjection),
            Percent(proto.MaxEjectionPercent, 10, where, "max_ejection_percent"));
    }

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    private static int Percent(uint? value, int fallback, string where, string field) => value switch
    {
        null => fallback,
        > 100 => throw new ProxyConfigException($"{where}: {field} is {value}; a percentage is 0 to 100"),
        _ => (int)value,
    };

    private static TimeSpan Positive(Google.Protobuf.WellKnownTypes.Duration? value, TimeSpan fallback, string where, string field)
    {
        if (value is null)
        {
            return fallback;
        }
        var span = value.ToTimeSpan();
        return span > TimeSpan.Zero ? span : throw new ProxyConfigException($"{where}: {field} must be positive");
    }
}
