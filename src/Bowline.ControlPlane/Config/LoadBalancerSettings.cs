namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>LoadBalancerSettings</c>.</summary>
/// <param name="Simple">ROUND_ROBIN, LEAST_REQUEST, RANDOM or PASSTHROUGH; null: Istio's default (LEAST_REQUEST).</param>
internal sealed record LoadBalancerSettings(string? Simple, ConsistentHash? ConsistentHash);

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
