using Bowline.Proxy.Clusters.Outlier;
using Bowline.Proxy.Stats;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Clusters;

/// <summary>
/// Owns every <see cref="ClusterState"/> by name. Compiling a candidate config stages what each cluster should become;
/// <see cref="Commit"/> publishes it when the candidate goes live, <see cref="Rollback"/> forgets it when the candidate
/// is NACKed, so a rejected update changes no cluster. Handles are created on first reference (a route may name a
/// cluster CDS has not delivered yet) and kept while anything may still refer to them.
/// </summary>
/// <remarks>Staging and committing happen on the xDS loop only; what the handles expose is thread-safe.</remarks>
internal sealed class ClusterManager(ProxyStats stats, TimeProvider time, Random random, ILoggerFactory loggers, Dns.IDnsResolver dns) : IDisposable
{
    private readonly Dictionary<string, ClusterState> _states = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (ClusterConfig Config, HostSet Hosts)> _staged = new(StringComparer.Ordinal);
    private readonly ILogger _outlierLogger = loggers.CreateLogger<OutlierDetector>();
    private readonly ILogger _dnsLogger = loggers.CreateLogger<Dns.DnsRefresher>();
    private readonly ILogger _healthLogger = loggers.CreateLogger<Health.HealthChecker>();
    private IReadOnlySet<string>? _stagedLive;

    /// <summary>The stable handle for <paramref name="name"/>, created (empty: 503 NC) if this is its first mention.</summary>
    public ClusterState Handle(string name)
    {
        if (!_states.TryGetValue(name, out var state))
        {
            state = _states[name] = new ClusterState(name, new ClusterStats(stats, name));
        }
        return state;
    }

    private ClusterState[] _live = [];

    /// <summary>Every cluster in the config as of the last commit, for admin: a copy, safe to read from any thread.</summary>
    public IReadOnlyList<ClusterState> Live => Volatile.Read(ref _live);

    /// <summary>Stages <paramref name="name"/> to become <paramref name="config"/> with <paramref name="hosts"/> on commit.</summary>
    public void Stage(string name, ClusterConfig config, HostSet hosts) => _staged[name] = (config, hosts);

    /// <summary>Stages the set of clusters the candidate has; every other cluster is removed on commit.</summary>
    public void StageLiveSet(IReadOnlySet<string> names) => _stagedLive = names;

    public void Commit()
    {
        foreach (var (name, (config, hosts)) in _staged)
        {
            var state = Handle(name);
            state.Publish(config, hosts);
            UpdateOutlierDetector(state, config.OutlierDetection);
            UpdateDns(state, config.Dns);
            UpdateHealthChecker(state, config.HealthCheck);
        }
        if (_stagedLive is { } live)
        {
            foreach (var state in _states.Values.Where(s => !live.Contains(s.Name) && s.Current is not null))
            {
                UpdateOutlierDetector(state, null);
                UpdateDns(state, null);
                UpdateHealthChecker(state, null);
                state.Remove();
            }
        }
        _staged.Clear();
        _stagedLive = null;
        Volatile.Write(ref _live, [.. _states.Values.Where(s => s.Current is not null)]);
    }

    public void Rollback()
    {
        _staged.Clear();
        _stagedLive = null;
    }

    /// <summary>Forgets handles of clusters that are neither configured nor named by any route (<paramref name="referenced"/>).</summary>
    public void Prune(IReadOnlySet<string> referenced)
    {
        foreach (var name in _states.Where(kv => kv.Value.Current is null && !referenced.Contains(kv.Key)).Select(kv => kv.Key).ToList())
        {
            _states.Remove(name);
        }
    }

    private void UpdateOutlierDetector(ClusterState state, OutlierDetectionConfig? config)
    {
        switch (state.OutlierDetector, config)
        {
            case (null, not null):
                state.OutlierDetector = new OutlierDetector(state, config, time, random, _outlierLogger);
                break;
            case (not null, null):
                var detector = state.OutlierDetector;
                state.OutlierDetector = null;
                detector.Dispose();
                break;
            case (not null, not null):
                state.OutlierDetector.Update(config);
                break;
        }
    }

    private void UpdateDns(ClusterState state, Dns.DnsSettings? settings)
    {
        if (settings is null)
        {
            state.DnsRefresher?.Dispose();
            state.DnsRefresher = null;
        }
        else if (state.DnsRefresher is { } refresher)
        {
            refresher.Update(settings);
        }
        else
        {
            state.DnsRefresher = new Dns.DnsRefresher(state, settings, dns, time, stats, _dnsLogger);
        }
    }

    private void UpdateHealthChecker(ClusterState state, Health.HealthCheckConfig? config)
    {
        if (config is null)
        {
            state.HealthChecker?.Dispose();
            state.HealthChecker = null;
        }
        else if (state.HealthChecker is { } checker)
        {
            checker.Update(config);
        }
        else
        {
            state.HealthChecker = new Health.HealthChecker(state, config, time, random, stats, _healthLogger);
        }
    }

    public void Dispose()
    {
        foreach (var state in _states.Values)
        {
            state.OutlierDetector?.Dispose();
            state.DnsRefresher?.Dispose();
            state.HealthChecker?.Dispose();
        }
    }
}
