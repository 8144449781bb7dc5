using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Clusters;

/// <summary>How a cluster's host sets are built, from its Cluster resource: panic threshold, hashing structure, locality weighting, slow start.</summary>
internal sealed record HostSetPolicy(int PanicThresholdPercent, HashRingKind? Ring = null, bool LocalityWeighted = false, SlowStart? SlowStart = null)
{
    public static readonly HostSetPolicy Default = new(50);
}

/// <summary>
/// Envoy's slow_start_config: a host that joined less than <paramref name="Window"/> ago takes a share of its weight
/// that grows as <c>max(MinWeight, (age / Window) ^ (1 / Aggression))</c>.
/// </summary>
internal sealed record SlowStart(TimeSpan Window, double Aggression, double MinWeight, TimeProvider Time)
{
    /// <summary>A warming host's weight is recomputed this often: a twentieth of the window, at least 100 ms.</summary>
    public TimeSpan Step => TimeSpan.FromTicks(Math.Max(TimeSpan.FromMilliseconds(100).Ticks, Window.Ticks / 20));

    public double Factor(TimeSpan age) =>
        age >= Window ? 1 : Math.Max(MinWeight, Math.Pow(Math.Max(age.TotalSeconds, 1) / Window.TotalSeconds, 1 / Aggression));
}

/// <summary>
/// A cluster's hosts as of one EDS assignment and one health state, laid out as Envoy's load balancer sees them:
/// priority levels with their share of the load (a level whose hosts are partly unavailable spills the rest to the
/// next, with the overprovisioning factor), per level the localities with their effective weights when the cluster is
/// locality-weighted, and per group the hosts requests may go to, expanded by weight so the balancers stay
/// weight-unaware and allocation-free. Immutable apart from two pick cursors; rebuilt when the assignment changes, a
/// host's health does (an ejection, a failed health check) or a warming host's weight grows, never per request.
/// </summary>
internal sealed class HostSet
{
    public static readonly HostSet Empty = new(null, [], HostSetPolicy.Default);

    /// <summary>Envoy's default overprovisioning_factor, 1.4 as a percentage.</summary>
    public const int DefaultOverprovisioningFactor = 140;

    /// <summary>The granularity of priority load: Envoy's percentages.</summary>
    private const int LoadUnits = 100;

    private readonly PriorityLevel[] _levels;
    private readonly int[] _levelSchedule;
    private readonly UpstreamEndpoint[]? _single;
    private readonly HashRing? _singleRing;
    private readonly bool _singleLevel;
    private uint _levelCursor;

    public HostSet(Envoy.Config.Endpoint.V3.ClusterLoadAssignment? source, IReadOnlyList<WeightedEndpoint> all, int panicThresholdPercent, HashRingKind? needsRing)
        : this(source, all, new HostSetPolicy(panicThresholdPercent, needsRing))
    {
    }

    public HostSet(Envoy.Config.Endpoint.V3.ClusterLoadAssignment? source, IReadOnlyList<WeightedEndpoint> all, HostSetPolicy policy)
    {
        Source = source;
        All = all;
        HealthyCount = all.Count(IsAvailable);
        var factor = (int?)source?.Policy?.OverprovisioningFactor ?? DefaultOverprovisioningFactor;
        var now = policy.SlowStart?.Time.GetTimestamp() ?? 0;
        var warming = false;
        var groups = all.GroupBy(e => e.Priority).OrderBy(g => g.Key).Select(g => g.ToList()).ToList();

        // Envoy's priority load: a level's health is its available share times the overprovisioning factor, capped at
        // 100; the levels' healths, normalized to their total, are their shares of the traffic.
        var health = groups.Select(g => Math.Min(100L, (long)factor * g.Count(IsAvailable) / g.Count)).ToArray();
        var total = Math.Min(100, health.Sum());
        var loads = Loads(health, total);
        _levels = new PriorityLevel[groups.Count];
        for (var i = 0; i < groups.Count; i++)
        {
            var hosts = groups[i];
            var available = hosts.Count(IsAvailable);
            // Panic is per level, and only when the levels together cannot carry the load (Envoy disregards the
            // threshold while lower priorities make up for a degraded one). With no available host anywhere, level 0 panics.
            var panic = policy.PanicThresholdPercent > 0 && total < 100 && available * 100 < policy.PanicThresholdPercent * hosts.Count;
            var serving = panic ? hosts : hosts.Where(IsAvailable).ToList();
            _levels[i] = new PriorityLevel(loads[i], health[i], panic, hosts, serving, policy, factor, now, ref warming);
        }
        Panic = _levels.Any(l => l.Panic && l.Load > 0);
        _levelSchedule = Schedule(loads);
        Available = [.. _levels.Where(l => l.Load > 0).SelectMany(l => l.Hosts)];
        _singleLevel = _levels.Count(l => l.Load > 0) <= 1;
        if (_singleLevel)
        {
            var only = _levels.FirstOrDefault(l => l.Load > 0);
            _single = only is { Localities: null } ? only.Hosts : null;
            _singleRing = only?.Ring;
        }
        if (all.Any(e => e.Tls is not null))
        {
            _tls = all.Where(e => e.Tls is not null).GroupBy(e => e.Endpoint).ToDictionary(g => g.Key, g => g.First().Tls);
        }
        ReweighAfter = warming ? policy.SlowStart!.Step : null;
    }

    /// <summary>The assignment this was built from (null for STATIC clusters, whose hosts are in the Cluster).</summary>
    public Envoy.Config.Endpoint.V3.ClusterLoadAssignment? Source { get; }

    public IReadOnlyList<WeightedEndpoint> All { get; }

    /// <summary>Every host requests may be sent to, over all levels with load, each repeated by its (GCD-reduced) weight.</summary>
    public UpstreamEndpoint[] Available { get; }

    public int HealthyCount { get; }

    /// <summary>True when a level with load has fewer available hosts than the panic threshold, so all its hosts serve.</summary>
    public bool Panic { get; }

    private readonly Dictionary<UpstreamEndpoint, Tls.UpstreamTls?>? _tls;

    /// <summary>The TLS <paramref name="host"/> is reached with under this assignment, or <paramref name="fallback"/> (the cluster's transport_socket).</summary>
    public Tls.UpstreamTls? TlsOf(UpstreamEndpoint host, Tls.UpstreamTls? fallback) => _tls is not null && _tls.TryGetValue(host, out var tls) ? tls : fallback;

    /// <summary>While a host is in slow start: how soon the set should be rebuilt to raise its weight; null otherwise.</summary>
    public TimeSpan? ReweighAfter { get; }

    /// <summary>
    /// The hosts one request's balancer picks among: the level (and locality) chosen by the load schedule, skipping the
    /// levels in <paramref name="excludedLevels"/> (Envoy's previous_priorities retry priority). Empty when no host can take the request.
    /// </summary>
    public UpstreamEndpoint[] Choose(ulong excludedLevels = 0)
    {
        if (_single is { } single && excludedLevels == 0)
        {
            return single;
        }
        if (_levels.Length == 0)
        {
            return [];
        }
        var level = ChooseLevel(Interlocked.Increment(ref _levelCursor), excludedLevels);
        return level.ChooseLocality();
    }

    /// <summary>For hashing balancers: the ring of the level the request's hash falls in, as Envoy chooses a priority by hash.</summary>
    public HashRing? ChooseRing(ulong hash, ulong excludedLevels = 0)
    {
        if (excludedLevels == 0 && _singleLevel)
        {
            return _singleRing;
        }
        return _levels.Length == 0 ? null : ChooseLevel((uint)(hash % LoadUnits), excludedLevels).Ring;
    }

    /// <summary>The index of the priority level <paramref name="host"/> is in, for the previous_priorities retry priority; -1 if none.</summary>
    public int LevelOf(UpstreamEndpoint host)
    {
        for (var i = 0; i < _levels.Length; i++)
        {
            if (Array.IndexOf(_levels[i].Hosts, host) >= 0)
            {
                return i;
            }
        }
        return -1;
    }

    private PriorityLevel ChooseLevel(uint cursor, ulong excludedLevels)
    {
        if (excludedLevels == 0 || _levels.Length > 64)
        {
            return _levels[_levelSchedule.Length == 0 ? 0 : _levelSchedule[cursor % (uint)_levelSchedule.Length]];
        }
        // A retry away from levels already tried: their health counts as zero and the load is recomputed (rare path).
        var health = new long[_levels.Length];
        for (var i = 0; i < _levels.Length; i++)
        {
            health[i] = (excludedLevels & (1UL << i)) != 0 ? 0 : _levels[i].Health;
        }
        var total = Math.Min(100, health.Sum());
        if (total == 0)
        {
            // Every level with health was tried: Envoy falls back to the unmodified load.
            return ChooseLevel(cursor, 0);
        }
        var point = (int)(cursor % LoadUnits);
        var loads = Loads(health, total);
        for (var i = 0; i < loads.Length; i++)
        {
            point -= loads[i];
            if (point < 0)
            {
                return _levels[i];
            }
        }
        return _levels[^1];
    }

    private static bool IsAvailable(WeightedEndpoint e) => e.Healthy && !e.Endpoint.Ejected && !e.Endpoint.FailedActiveHealthCheck;

    /// <summary>Each level's share of <see cref="LoadUnits"/>, in priority order; all of it on level 0 when nothing is available.</summary>
    private static int[] Loads(long[] health, long total)
    {
        var loads = new int[health.Length];
        if (health.Length == 0)
        {
            return loads;
        }
        if (total == 0)
        {
            loads[0] = LoadUnits;
            return loads;
        }
        var remaining = LoadUnits;
        for (var i = 0; i < health.Length && remaining > 0; i++)
        {
            loads[i] = (int)Math.Min(remaining, health[i] * LoadUnits / total);
            remaining -= loads[i];
        }
        // Rounding leftovers go to the first level with health, as Envoy's do.
        if (remaining > 0)
        {
            loads[Array.FindIndex(health, h => h > 0)] += remaining;
        }
        return loads;
    }

    /// <summary>
    /// A smooth weighted round-robin sequence of indices (nginx's algorithm), so consecutive picks interleave the
    /// groups in proportion to their weights instead of running through one group, then the next.
    /// </summary>
    internal static int[] Schedule(IReadOnlyList<int> weights)
    {
        var total = weights.Sum();
        if (total == 0 || weights.Count(w => w > 0) <= 1)
        {
            var only = Enumerable.Range(0, weights.Count).FirstOrDefault(i => weights[i] > 0);
            return [only];
        }
        var schedule = new int[total];
        var current = new long[weights.Count];
        for (var slot = 0; slot < total; slot++)
        {
            var best = -1;
            for (var i = 0; i < weights.Count; i++)
            {
                current[i] += weights[i];
                if (weights[i] > 0 && (best < 0 || current[i] > current[best]))
                {
                    best = i;
                }
            }
            current[best] -= total;
            schedule[slot] = best;
        }
        return schedule;
    }

    /// <summary>Hosts expanded by weight, reduced by the weights' GCD so the expansion stays small.</summary>
    internal static UpstreamEndpoint[] ExpandByWeight(IReadOnlyList<(UpstreamEndpoint Host, int Weight)> hosts)
    {
        if (hosts.Count == 0)
        {
            return [];
        }
        var gcd = hosts.Select(e => Math.Max(1, e.Weight)).Aggregate(Gcd);
        return [.. hosts.SelectMany(e => Enumerable.Repeat(e.Host, Math.Min(100, Math.Max(1, e.Weight) / gcd)))];
    }

    private static int Gcd(int a, int b) => b == 0 ? a : Gcd(b, a % b);

    /// <summary>One priority level of the set: its load, its serving hosts, and for locality-weighted clusters its localities.</summary>
    private sealed class PriorityLevel
    {
        private readonly int[]? _localitySchedule;
        private uint _localityCursor;

        public PriorityLevel(int load, long health, bool panic, List<WeightedEndpoint> hosts, List<WeightedEndpoint> serving, HostSetPolicy policy, int overprovisioning, long now, ref bool warming)
        {
            Load = load;
            Health = health;
            Panic = panic;
            var weighted = Weigh(serving, policy.SlowStart, now, ref warming);
            Hosts = ExpandByWeight(weighted);
            // Envoy's locality-weighted balancing picks a locality first, by its weight times its availability, then a
            // host in it; a level in panic balances over all its hosts, ignoring localities.
            if (policy.LocalityWeighted && !panic)
            {
                var members = hosts.GroupBy(e => e.Locality).ToDictionary(g => g.Key, g => g.Count(), StringComparer.Ordinal);
                var effective = new List<int>();
                var groups = new List<UpstreamEndpoint[]>();
                foreach (var locality in serving.Select((e, i) => (e, i)).GroupBy(x => x.e.Locality))
                {
                    // Availability: the share of the locality's hosts serving, times the overprovisioning factor, capped at 1.
                    var availability = Math.Min(1.0, overprovisioning / 100.0 * locality.Count() / members[locality.Key]);
                    var weight = (int)Math.Round(locality.First().e.LocalityWeight * availability * 10);
                    if (weight > 0)
                    {
                        effective.Add(weight);
                        groups.Add(ExpandByWeight([.. locality.Select(x => weighted[x.i])]));
                    }
                }
                if (groups.Count > 1)
                {
                    var gcd = effective.Aggregate(Gcd);
                    Localities = [.. groups];
                    _localitySchedule = Schedule([.. effective.Select(w => w / gcd)]);
                }
                // A locality without weight takes no traffic, as in Envoy.
                Hosts = groups.Count == 1 ? groups[0] : groups.Count == 0 ? [] : [.. groups.SelectMany(g => g)];
            }
            if (policy.Ring is { } ring && Hosts.Length > 0)
            {
                Ring = HashRing.Build(ring, [.. weighted.Select(w => new WeightedEndpoint(w.Host, w.Weight, true))]);
            }
        }

        /// <summary>The level's share of the load, out of <see cref="LoadUnits"/>.</summary>
        public int Load { get; }

        /// <summary>The level's health (available share times overprovisioning, capped at 100), for recomputing load when a retry excludes levels.</summary>
        public long Health { get; }

        public bool Panic { get; }

        public UpstreamEndpoint[] Hosts { get; }

        public UpstreamEndpoint[][]? Localities { get; }

        public HashRing? Ring { get; }

        public UpstreamEndpoint[] ChooseLocality() =>
            Localities is { } localities ? localities[_localitySchedule![Interlocked.Increment(ref _localityCursor) % (uint)_localitySchedule.Length]] : Hosts;

        /// <summary>Host weights, scaled down for hosts in slow start.</summary>
        private static List<(UpstreamEndpoint Host, int Weight)> Weigh(List<WeightedEndpoint> hosts, SlowStart? slowStart, long now, ref bool warming)
        {
            if (slowStart is null)
            {
                return [.. hosts.Select(h => (h.Endpoint, h.Weight))];
            }
            var weighted = new List<(UpstreamEndpoint, int)>(hosts.Count);
            foreach (var host in hosts)
            {
                var factor = slowStart.Factor(slowStart.Time.GetElapsedTime(host.Endpoint.JoinedAt, now));
                warming |= factor < 1;
                // Scaled by 100 so a warming host's fraction survives the integer expansion; the GCD undoes it otherwise.
                weighted.Add((host.Endpoint, Math.Max(1, (int)Math.Round(Math.Max(1, host.Weight) * factor * 100))));
            }
            return weighted;
        }
    }
}
