namespace Bowline.Proxy.Clusters;

/// <summary>
/// Envoy's circuit-breaker thresholds for the default priority, with its defaults (1024 each). Istio's
/// <c>maxConnections</c> is per upstream host; the HTTP/1.1 pending queue is what a host's requests beyond its
/// connections wait in, so a host's active requests may reach <c>MaxConnections + MaxPendingRequests</c> on HTTP/1.1.
/// </summary>
/// <param name="RetryBudgetPercent">Envoy's retry_budget.budget_percent; null without a budget (then <see cref="MaxRetries"/> applies).</param>
internal sealed record CircuitBreakerLimits(
    int MaxConnections,
    int MaxPendingRequests,
    int MaxRequests,
    int MaxRetries,
    double? RetryBudgetPercent,
    int RetryBudgetMinConcurrency)
{
    public const int EnvoyDefault = 1024;

    public static readonly CircuitBreakerLimits Default = new(EnvoyDefault, EnvoyDefault, EnvoyDefault, 3, null, 3);

    /// <summary>Whether one more retry may start while <paramref name="activeRetries"/> run among <paramref name="activeRequests"/>.</summary>
    public bool AllowsRetry(int activeRetries, int activeRequests)
    {
        if (RetryBudgetPercent is { } percent)
        {
            // Envoy: the budget is a share of active requests (and pending ones), never below the minimum concurrency.
            var budget = Math.Max(RetryBudgetMinConcurrency, (int)(activeRequests * percent / 100.0));
            return activeRetries < budget;
        }
        return activeRetries < MaxRetries;
    }
}
