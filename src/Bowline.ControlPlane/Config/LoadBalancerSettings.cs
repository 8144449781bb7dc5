namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>LoadBalancerSettings</c>.</summary>
/// <param name="Simple">ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH; null: Istio's default (LEAST_REQUEST).</param>
internal sealed record LoadBalancerSettings(string? Simple, ConsistentHash? ConsistentHash)
{
    /// <summary>The <c>localityLbSetting</c>; null when not given (Istio's mesh default then applies: enabled, no remapping).</summary>
    public LocalityLbSetting? Locality { get; init; }

    /// <summary>
    /// <c>warmupDurationSecs</c> (a duration despite its name): Envoy's slow start window for ROUND_ROBIN and
    /// LEAST_REQUEST; null when not given, or when the newer <c>warmup</c> is also given (Istio then uses <c>warmup</c>).
    /// </summary>
    public TimeSpan? WarmupDuration { get; init; }
}

/// <summary>
/// Istio's <c>LocalityLoadBalancerSetting</c>. Failover (priorities by the connecting proxy's locality or labels) takes
/// effect only on a cluster with outlier detection, since nothing else would move traffic off a failed priority.
/// </summary>
/// <param name="Enabled">False turns locality load balancing off for the destination (every locality at priority 0).</param>
/// <param name="Failover">Region remappings: a proxy in <c>From</c> fails over to <c>To</c> before any other region.</param>
/// <param name="FailoverPriority">Labels (<c>key</c> or <c>key=value</c>) an endpoint must share with the proxy, in order of importance.</param>
/// <param name="Distribute">Weighted distribution, per proxy locality; when given, Istio sets locality weights and no failover priorities.</param>
internal sealed record LocalityLbSetting(bool Enabled, IReadOnlyList<LocalityFailover> Failover, IReadOnlyList<string> FailoverPriority, IReadOnlyList<LocalityDistribute> Distribute);

/// <summary>One <c>localityLbSetting.failover</c> entry: regions only.</summary>
internal sealed record LocalityFailover(string From, string To);

/// <summary>
/// One <c>localityLbSetting.distribute</c> entry: a proxy whose locality matches <c>From</c> sends each <c>To</c>
/// locality its weight (a percentage; they total 100). Localities are <c>region/zone/subzone</c> patterns where a part
/// may be <c>*</c> and missing trailing parts match anything.
/// </summary>
/// <param name="To">The weights in the order written; an endpoint locality counts for the first entry it matches.</param>
internal sealed record LocalityDistribute(string From, IReadOnlyList<LocalityWeight> To);

/// <summary>One <c>to</c> entry of a distribute rule.</summary>
internal sealed record LocalityWeight(string Locality, uint Weight);

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
