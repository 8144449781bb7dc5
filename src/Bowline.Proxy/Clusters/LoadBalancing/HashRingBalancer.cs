namespace Bowline.Proxy.Clusters.LoadBalancing;

/// <summary>
/// RING_HASH and MAGLEV: the request's hash-policy value picks the host on the host set's precomputed ring or table.
/// A request with no hash (no policy matched) gets a random one, as Envoy does. A re-selection after a failed attempt
/// rehashes, so a retry moves to another host.
/// </summary>
internal sealed class HashRingBalancer(HashRingKind kind, Random random) : ILoadBalancer
{
    public string Name => kind.IsMaglev ? LoadBalancers.Maglev : LoadBalancers.RingHash;

    public HashRingKind? RingKind => kind;

    public UpstreamEndpoint? Pick(HostSet hosts, ulong? hash, int attempt, ulong excludedLevels = 0)
    {
        var key = hash ?? (ulong)random.NextInt64();
        if (hosts.ChooseRing(key, excludedLevels) is not { } ring)
        {
            return null;
        }
        // Envoy's host re-selection for hashing balancers also moves the hash: mix the attempt in.
        return ring.Find(attempt == 0 ? key : HashRing.Mix(key + (ulong)attempt));
    }
}
