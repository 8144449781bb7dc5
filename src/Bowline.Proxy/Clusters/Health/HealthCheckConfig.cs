using Bowline.Proxy.Configuration;
using Envoy.Config.Core.V3;

namespace Bowline.Proxy.Clusters.Health;

/// <summary>What an active health check sends.</summary>
internal enum HealthCheckKind
{
    Http,
    Grpc,
    Tcp,
}

/// <summary>
/// A cluster's compiled <c>health_checks[0]</c> (Envoy's <c>HealthCheck</c>): the probe, its timing and thresholds.
/// Expected HTTP statuses are half-open ranges, as Envoy's <c>Int64Range</c>; the default is 200-299.
/// </summary>
internal sealed record HealthCheckConfig(
    HealthCheckKind Kind,
    TimeSpan Interval,
    TimeSpan Timeout,
    TimeSpan Jitter,
    int UnhealthyThreshold,
    int HealthyThreshold,
    string Path,
    string? Host,
    (long Start, long End)[] ExpectedStatuses,
    string GrpcService)
{
    public bool IsExpected(int status) => ExpectedStatuses.Any(r => status >= r.Start && status < r.End);

    public static HealthCheckConfig Compile(IReadOnlyList<HealthCheck> checks, string where)
    {
        if (checks.Count != 1)
        {
            throw new ProxyConfigException($"{where}: health_checks has {checks.Count} entries; Bowline runs one health check per cluster");
        }
        var check = checks[0];
        XdsFields.Check(check, where + " health_checks[0]", "timeout", "interval", "interval_jitter", "unhealthy_threshold", "healthy_threshold",
            "http_health_check", "grpc_health_check", "tcp_health_check", "reuse_connection", "always_log_health_check_failures");
        var interval = Required(check.Interval, where, "interval");
        var timeout = Required(check.Timeout, where, "timeout");
        var jitter = check.IntervalJitter?.ToTimeSpan() ?? TimeSpan.Zero;
        var unhealthy = (int)(check.UnhealthyThreshold ?? 0);
        var healthy = (int)(check.HealthyThreshold ?? 0);
        if (unhealthy < 1 || healthy < 1)
        {
            throw new ProxyConfigException($"{where}: health_checks[0] needs unhealthy_threshold and healthy_threshold of at least 1");
        }
        switch (check.HealthCheckerCase)
        {
            case HealthCheck.HealthCheckerOneofCase.HttpHealthCheck:
                var http = check.HttpHealthCheck;
                XdsFields.Check(http, where + " http_health_check", "host", "path", "expected_statuses");
                if (!http.Path.StartsWith('/'))
                {
                    throw new ProxyConfigException($"{where}: http_health_check.path '{http.Path}' must start with /");
                }
                (long, long)[] statuses = http.ExpectedStatuses.Count == 0 ? [(200, 300)] : [.. http.ExpectedStatuses.Select(r => (r.Start, r.End))];
                if (statuses.Any(r => r.Item1 < 100 || r.Item2 > 600 || r.Item1 >= r.Item2))
                {
                    throw new ProxyConfigException($"{where}: http_health_check.expected_statuses must be ranges within [100, 600) with start below end");
                }
                return new HealthCheckConfig(HealthCheckKind.Http, interval, timeout, jitter, unhealthy, healthy, http.Path, http.Host.Length > 0 ? http.Host : null, statuses, "");
            case HealthCheck.HealthCheckerOneofCase.GrpcHealthCheck:
                XdsFields.Check(check.GrpcHealthCheck, where + " grpc_health_check", "service_name", "authority");
                return new HealthCheckConfig(HealthCheckKind.Grpc, interval, timeout, jitter, unhealthy, healthy, "/grpc.health.v1.Health/Check",
                    check.GrpcHealthCheck.Authority.Length > 0 ? check.GrpcHealthCheck.Authority : null, [], check.GrpcHealthCheck.ServiceName);
            case HealthCheck.HealthCheckerOneofCase.TcpHealthCheck:
                // A connect-only check: send and receive payloads are refused by the field check.
                XdsFields.Check(check.TcpHealthCheck, where + " tcp_health_check");
                return new HealthCheckConfig(HealthCheckKind.Tcp, interval, timeout, jitter, unhealthy, healthy, "", null, [], "");
            default:
                throw new ProxyConfigException($"{where}: health_checks[0] needs http_health_check, grpc_health_check or tcp_health_check");
        }
    }

    private static TimeSpan Required(Google.Protobuf.WellKnownTypes.Duration? value, string where, string field) =>
        value?.ToTimeSpan() is { Ticks: > 0 } span ? span : throw new ProxyConfigException($"{where}: health_checks[0].{field} must be set and positive");
}
