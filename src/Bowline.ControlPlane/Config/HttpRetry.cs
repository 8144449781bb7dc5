namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>HTTPRetry</c>.</summary>
/// <param name="Attempts">Retries allowed (not counting the first try); 0 turns retries off, even Istio's default ones.</param>
/// <param name="RetryOn">Envoy retry conditions, comma separated; numbers among them are retriable status codes. Null: Istio's default conditions.</param>
/// <param name="IgnorePreviousHosts">Null: Istio's default (retry on a host not tried yet, unless the route hashes consistently).</param>
internal sealed record HttpRetry(int Attempts, TimeSpan? PerTryTimeout, string? RetryOn, bool? IgnorePreviousHosts, TimeSpan? Backoff)
{
    /// <summary><c>retryRemoteLocalities: true</c>: a retry goes to a priority (locality) not tried yet, Envoy's previous_priorities.</summary>
    public bool RetryRemoteLocalities { get; init; }
}
