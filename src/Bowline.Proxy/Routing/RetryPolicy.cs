namespace Bowline.Proxy.Routing;

/// <summary>Envoy's <c>retry_on</c> conditions, as flags.</summary>
[Flags]
internal enum RetryOn
{
    None = 0,
    FiveXx = 1 << 0,
    GatewayError = 1 << 1,
    Reset = 1 << 2,
    ConnectFailure = 1 << 3,
    RefusedStream = 1 << 4,
    Retriable4xx = 1 << 5,
    RetriableStatusCodes = 1 << 6,
    GrpcCancelled = 1 << 7,
    GrpcDeadlineExceeded = 1 << 8,
    GrpcInternal = 1 << 9,
    GrpcResourceExhausted = 1 << 10,
    GrpcUnavailable = 1 << 11,

    /// <summary>Only failures before the request reached the upstream (Istio's inbound default): safe for any method.</summary>
    ResetBeforeRequest = 1 << 12,
}

/// <summary>
/// A route's compiled <c>retry_policy</c>: which outcomes are retried, how often, with what per-try timeout and
/// backoff, whether a retry avoids hosts already tried (the previous_hosts predicate), and, with the
/// previous_priorities retry priority, after how many attempts a retry leaves the priority levels already tried
/// (<see cref="PriorityUpdateFrequency"/>; 0 when retries stay on the normal priority load). Immutable.
/// </summary>
internal sealed record RetryPolicy(
    RetryOn On,
    int NumRetries,
    TimeSpan? PerTryTimeout,
    int[] RetriableStatusCodes,
    bool AvoidPreviousHosts,
    int HostSelectionMaxAttempts,
    TimeSpan BackoffBase,
    TimeSpan BackoffMax,
    int PriorityUpdateFrequency = 0)
{
    /// <summary>Envoy's default backoff: 25 ms base, ten times that as the cap.</summary>
    public static readonly TimeSpan DefaultBackoffBase = TimeSpan.FromMilliseconds(25);

    /// <summary>Whether an upstream response (status and, for gRPC, grpc-status from the headers) is retried.</summary>
    public bool RetriesResponse(int status, int? grpcStatus) => RetriesStatus(status) || RetriesGrpcStatus(grpcStatus);

    /// <summary>Whether any gRPC condition is set, so the response's grpc-status is worth reading.</summary>
    public bool RetriesGrpc => (On & (RetryOn.GrpcCancelled | RetryOn.GrpcDeadlineExceeded | RetryOn.GrpcInternal | RetryOn.GrpcResourceExhausted | RetryOn.GrpcUnavailable)) != 0;

    /// <summary>Whether the HTTP status alone makes the response retried.</summary>
    public bool RetriesStatus(int status)
    {
        if ((On & RetryOn.FiveXx) != 0 && status >= 500)
        {
            return true;
        }
        if ((On & RetryOn.GatewayError) != 0 && status is 502 or 503 or 504)
        {
            return true;
        }
        if ((On & RetryOn.Retriable4xx) != 0 && status == 409)
        {
            return true;
        }
        return (On & RetryOn.RetriableStatusCodes) != 0 && Array.IndexOf(RetriableStatusCodes, status) >= 0;
    }

    /// <summary>Whether a gRPC status (from a trailers-only response's headers) is retried.</summary>
    public bool RetriesGrpcStatus(int? grpcStatus)
    {
        return grpcStatus switch
        {
            1 => (On & RetryOn.GrpcCancelled) != 0,
            4 => (On & RetryOn.GrpcDeadlineExceeded) != 0,
            8 => (On & RetryOn.GrpcResourceExhausted) != 0,
            13 => (On & RetryOn.GrpcInternal) != 0,
            14 => (On & RetryOn.GrpcUnavailable) != 0,
            _ => false,
        };
    }

    /// <summary>Connect failures: retried by connect-failure, and by 5xx, gateway-error and reset, which include them.</summary>
    public bool RetriesConnectFailure => (On & (RetryOn.ConnectFailure | RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset | RetryOn.ResetBeforeRequest)) != 0;

    /// <summary>A reset or disconnect before the response: reset and 5xx retry it; gateway-error does too (Envoy treats it as a 503).</summary>
    public bool RetriesReset => (On & (RetryOn.Reset | RetryOn.FiveXx | RetryOn.GatewayError)) != 0;

    /// <summary>An HTTP/2 REFUSED_STREAM (the upstream never processed it): retried by refused-stream, reset, reset-before-request and 5xx.</summary>
    public bool RetriesRefusedStream => (On & (RetryOn.RefusedStream | RetryOn.Reset | RetryOn.FiveXx | RetryOn.ResetBeforeRequest)) != 0;

    /// <summary>A per-try timeout: Envoy retries it under 5xx, gateway-error and reset.</summary>
    public bool RetriesPerTryTimeout => (On & (RetryOn.FiveXx | RetryOn.GatewayError | RetryOn.Reset)) != 0;

    /// <summary>Envoy's fully jittered exponential backoff before retry number <paramref name="retry"/> (1-based): uniform in [0, (2^n − 1) × base], capped.</summary>
    public TimeSpan Backoff(int retry, Random random)
    {
        var ceiling = Math.Min(BackoffBase.Ticks * ((1L << Math.Min(retry, 20)) - 1), BackoffMax.Ticks);
        return TimeSpan.FromTicks(random.NextInt64(Math.Max(1, ceiling)));
    }
}
