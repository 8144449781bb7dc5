namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>HTTPFaultInjection</c>: a delay, an abort, or both.</summary>
internal sealed record HttpFault(FaultDelay? Delay, FaultAbort? Abort);

/// <summary>A fixed delay before forwarding.</summary>
/// <param name="Percentage">Share of requests delayed, 0-100 (fractions allowed).</param>
/// <param name="LegacyPercent">The deprecated integer <c>percent</c>, used when <paramref name="Percentage"/> is absent; with neither, Istio delays no request.</param>
internal sealed record FaultDelay(TimeSpan FixedDelay, double? Percentage, int LegacyPercent);

/// <summary>An abort with an HTTP status or a gRPC status code (by number, as Envoy takes it).</summary>
/// <param name="Percent">Share of requests aborted, 0-100; null: Istio sends no percentage, and Envoy then aborts no request.</param>
internal sealed record FaultAbort(int? HttpStatus, int? GrpcStatus, double? Percent);
