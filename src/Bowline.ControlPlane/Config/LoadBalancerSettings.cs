namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>LoadBalancerSettings</c>.</summary>
/// <param name="Simple">ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH; null: Istio's default (LEAST_REQUEST).</param>
internal sealed record LoadBalancerSettings(string? Simple, ConsistentHash? ConsistentHash)
{
    /// <summary>The <c>localityLbSetting</c>; null when not given (Istio's mesh default then applies: enabled, no remapping).</summary>
    public LocalityLbSetting? Locality { get; init; }
}

/// <summary>
/// Istio's <c>LocalityLoadBalancerSetting</c>. Failover (priorities by the connecting proxy's locality or labels) takes
/// effect only on a cluster with outlier detection, since nothing else would move traffic off a failed priority.
/// </summary>
/// <param name="Enabled">False turns locality load balancing off for the destination (every locality at priority 0).</param>
/// <param name="Failover">Region remappings: a proxy in <c>From</c> fails over to <c>To</c> before any other region.</param>
/// <param name="FailoverPriority">Labels (<c>key</c> or <c>key=value</c>) an endpoint must share with the proxy, in order of importance.</param>
/// <param name="HasDistribute">Weighted distribution was given; Bowline does not apply it yet (and, as in Istio, no failover then).</param>
internal sealed record LocalityLbSetting(bool Enabled, IReadOnlyList<LocalityFailover> Failover, IReadOnlyList<string> FailoverPriority, bool HasDistribute);

/// <summary>One <c>localityLbSetting.failover</c> entry: regions only.</summary>
internal sealed record LocalityFailover(string From, string To);

/// <summary>Which part of a request a consistent hash is computed from: exactly one is set.</summary>
internal sealed record ConsistentHash(string? HttpHeaderName, HashCookie? HttpCookie, bool UseSourceIp, string? HttpQueryParameterName)
{
    /// <summary>Ring hash's minimum ring size (ringHash.minimumRingSize or the deprecated minimumRingSize).</summary>
    public ulong? MinimumRingSize { get; init; }

    /// <summary>Set when maglev was chosen; its table size (a prime).</summary>
    public ulong? MaglevTableSize { get; init; }

    public bool Maglev { get; init; }

    /// <summary>ringHash was given explicitly (rather than the deprecated field or nothing).</summary>
    public bool RingHash { get; init; }
}

/// <summary>A hash cookie; with a TTL the proxy generates it when the request lacks it.</summary>
internal sealed record HashCookie(string Name, string? Path, TimeSpan? Ttl);
