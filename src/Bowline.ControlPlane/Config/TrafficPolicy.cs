namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>TrafficPolicy</c> (or a <c>PortTrafficPolicy</c>: the same parts, no port settings or retry budget).</summary>
internal sealed record TrafficPolicy(
    LoadBalancerSettings? LoadBalancer,
    ConnectionPoolSettings? ConnectionPool,
    OutlierDetection? OutlierDetection,
    RetryBudget? RetryBudget,
    IReadOnlyList<PortTrafficPolicy> PortLevelSettings)
{
    /// <summary><c>tls</c>: how the client's sidecar speaks TLS to the destination; null leaves it to automatic mTLS.</summary>
    public ClientTlsSettings? Tls { get; init; }

    /// <summary>
    /// The policy for one cluster, with Istio's precedence: a port-level policy replaces the destination's policy
    /// wholesale (its omitted parts take defaults, not the destination's); a subset's policy overrides part by part,
    /// and a subset's own port-level policy replaces every part.
    /// </summary>
    public static TrafficPolicy? Effective(TrafficPolicy? rule, TrafficPolicy? subset, int port)
    {
        var (ruleForPort, _) = ForPort(rule, port);
        if (subset is null)
        {
            return ruleForPort;
        }
        var (subsetForPort, portLevel) = ForPort(subset, port);
        if (ruleForPort is null)
        {
            return subsetForPort;
        }
        return new TrafficPolicy(
            subsetForPort!.LoadBalancer ?? (portLevel ? null : ruleForPort.LoadBalancer),
            subsetForPort.ConnectionPool ?? (portLevel ? null : ruleForPort.ConnectionPool),
            subsetForPort.OutlierDetection ?? (portLevel ? null : ruleForPort.OutlierDetection),
            subsetForPort.RetryBudget ?? ruleForPort.RetryBudget,
            [])
        {
            Tls = subsetForPort.Tls ?? (portLevel ? null : ruleForPort.Tls),
        };
    }

    private static (TrafficPolicy? Policy, bool PortLevel) ForPort(TrafficPolicy? policy, int port)
    {
        if (policy?.PortLevelSettings.FirstOrDefault(p => p.Port == port) is not { } portPolicy)
        {
            return (policy, false);
        }
        return (new TrafficPolicy(portPolicy.LoadBalancer, portPolicy.ConnectionPool, portPolicy.OutlierDetection, null, []) { Tls = portPolicy.Tls }, true);
    }
}

/// <summary>A traffic policy for one service port.</summary>
internal sealed record PortTrafficPolicy(int Port, LoadBalancerSettings? LoadBalancer, ConnectionPoolSettings? ConnectionPool, OutlierDetection? OutlierDetection)
{
    public ClientTlsSettings? Tls { get; init; }
}

/// <summary>Istio's <c>TrafficPolicy.RetryBudget</c>, Envoy's circuit-breaker retry budget.</summary>
/// <param name="Percent">Retries allowed as a share of active requests; Istio's default 20.</param>
/// <param name="MinRetryConcurrency">Retries always allowed; Istio's default 3.</param>
internal sealed record RetryBudget(double? Percent, uint? MinRetryConcurrency, TimeSpan? BudgetInterval);
