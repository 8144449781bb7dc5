using System.IO.Hashing;
using System.Text;

namespace Bowline.Proxy.Clusters.LoadBalancing;

/// <summary>The consistent-hash structure a cluster needs: a ring of at least MinSize entries, or a Maglev table of TableSize.</summary>
internal sealed record HashRingKind(bool IsMaglev, int MinSize, int MaxSize);

/// <summary>
/// A consistent-hash lookup built once per host set: Karger's ring (each host at weight-proportional points, hashed
/// with xxHash64 as Envoy hashes <c>address:port_i</c>) or a Maglev table (Eisenbud et al., weighted permutation fill).
/// Immutable and thread-safe; <see cref="Find"/> does not allocate.
/// </summary>
internal sealed class HashRing
{
    private readonly ulong[] _points;
    private readonly UpstreamEndpoint[] _hosts;

    private HashRing(ulong[] points, UpstreamEndpoint[] hosts)
    {
        _points = points;
        _hosts = hosts;
    }

    public int Size => _hosts.Length;

    public static HashRing Build(HashRingKind kind, IReadOnlyList<WeightedEndpoint> hosts) => kind.IsMaglev ? BuildMaglev(kind.MinSize, hosts) : BuildRing(kind, hosts);

    /// <summary>The host owning <paramref name="hash"/>.</summary>
    public UpstreamEndpoint Find(ulong hash)
    {
        if (_points.Length == 0)
        {
            // Maglev: a direct table lookup.
            return _hosts[(int)(hash % (ulong)_hosts.Length)];
        }
        var index = Array.BinarySearch(_points, hash);
        if (index < 0)
        {
            index = ~index;
        }
        return _hosts[index == _hosts.Length ? 0 : index];
    }

    public static ulong Hash(ReadOnlySpan<byte> bytes) => XxHash64.HashToUInt64(bytes);

    public static ulong Hash(string value)
    {
        Span<byte> buffer = stackalloc byte[256];
        var count = Encoding.UTF8.GetMaxByteCount(value.Length) <= buffer.Length ? Encoding.UTF8.GetBytes(value, buffer) : -1;
        return count >= 0 ? Hash(buffer[..count]) : Hash(Encoding.UTF8.GetBytes(value));
    }

    /// <summary>A 64-bit finalizer (SplitMix64), to derive further well-spread hashes from one.</summary>
    public static ulong Mix(ulong x)
    {
        x ^= x >> 30;
        x *= 0xbf58476d1ce4e5b9UL;
        x ^= x >> 27;
        x *= 0x94d049bb133111ebUL;
        return x ^ (x >> 31);
    }

    public static bool IsPrime(int n)
    {
        if (n < 2)
        {
            return false;
        }
        for (var i = 2; (long)i * i <= n; i++)
        {
            if (n % i == 0)
            {
                return false;
            }
        }
        return true;
    }

    private static HashRing BuildRing(HashRingKind kind, IReadOnlyList<WeightedEndpoint> hosts)
    {
        // Envoy: scale so the lightest host gets at least one entry and the ring has at least MinSize, at most MaxSize.
        double totalWeight = hosts.Sum(h => Math.Max(1, h.Weight));
        var minNormalized = hosts.Min(h => Math.Max(1, h.Weight)) / totalWeight;
        var scale = Math.Min(Math.Ceiling(minNormalized * kind.MinSize) / minNormalized, kind.MaxSize);
        var entries = new List<(ulong Hash, UpstreamEndpoint Host)>((int)Math.Min(scale + hosts.Count, kind.MaxSize + hosts.Count));
        var target = 0.0;
        var count = 0L;
        foreach (var host in hosts)
        {
            target += Math.Max(1, host.Weight) / totalWeight * scale;
            for (var i = 0; count < target; i++, count++)
            {
                entries.Add((Hash($"{host.Endpoint.Address}:{host.Endpoint.Port}_{i}"), host.Endpoint));
            }
        }
        entries.Sort((a, b) => a.Hash.CompareTo(b.Hash));
        return new HashRing([.. entries.Select(e => e.Hash)], [.. entries.Select(e => e.Host)]);
    }

    private static HashRing BuildMaglev(int tableSize, IReadOnlyList<WeightedEndpoint> hosts)
    {
        var m = (ulong)tableSize;
        var offsets = new ulong[hosts.Count];
        var skips = new ulong[hosts.Count];
        var next = new ulong[hosts.Count];
        var progress = new double[hosts.Count];
        double maxWeight = hosts.Max(h => Math.Max(1, h.Weight));
        for (var i = 0; i < hosts.Count; i++)
        {
            var name = $"{hosts[i].Endpoint.Address}:{hosts[i].Endpoint.Port}";
            var h = Hash(name);
            offsets[i] = h % m;
            skips[i] = Mix(h) % (m - 1) + 1;
        }
        var table = new UpstreamEndpoint?[tableSize];
        var filled = 0;
        while (filled < tableSize)
        {
            for (var i = 0; i < hosts.Count && filled < tableSize; i++)
            {
                // Weighted Maglev: a host takes a slot in a round only when its weight has accrued one.
                progress[i] += Math.Max(1, hosts[i].Weight) / maxWeight;
                if (progress[i] < 1)
                {
                    continue;
                }
                progress[i] -= 1;
                ulong slot;
                do
                {
                    slot = (offsets[i] + next[i] * skips[i]) % m;
                    next[i]++;
                }
                while (table[slot] is not null);
                table[slot] = hosts[i].Endpoint;
                filled++;
            }
        }
        return new HashRing([], table!);
    }
}
