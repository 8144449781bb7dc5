using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Clusters.Outlier;

/// <summary>
/// Envoy's consecutive-errors outlier detection for one cluster. Request threads report each attempt's outcome; a
/// host crossing a threshold is ejected at once (subject to the enforcing percentage and max_ejection_percent, but
/// always at least one host), for base_ejection_time × its ejection count, capped at max_ejection_time. A timer at
/// every interval returns hosts whose time is up and lets the multiplier of well-behaved hosts decay.
/// </summary>
/// <remarks>Thread-safe. Owned by its <see cref="ClusterState"/>, so ejections survive config pushes; disposed when the cluster loses outlier_detection or goes away.</remarks>
internal sealed partial class OutlierDetector : IDisposable
{
    private readonly ClusterState _cluster;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly Lock _lock = new();
    private ITimer? _timer;
    private OutlierDetectionConfig _config;

    public OutlierDetector(ClusterState cluster, OutlierDetectionConfig config, TimeProvider time, Random random, ILogger logger)
    {
        _cluster = cluster;
        _config = config;
        _time = time;
        _random = random;
        _logger = logger;
        _timer = time.CreateTimer(_ => Sweep(), null, config.Interval, config.Interval);
    }

    public OutlierDetectionConfig Config => Volatile.Read(ref _config);

    /// <summary>A changed outlier_detection keeps the hosts' state; only the settings and the sweep interval change.</summary>
    public void Update(OutlierDetectionConfig config)
    {
        var previous = Interlocked.Exchange(ref _config, config);
        if (previous.Interval != config.Interval)
        {
            _timer?.Change(config.Interval, config.Interval);
        }
    }

    public void Report(UpstreamEndpoint host, UpstreamOutcome outcome)
    {
        var config = Config;
        var (fiveXx, gateway, localOrigin) = host.Record(outcome, config.SplitExternalLocalOriginErrors);
        if (outcome == UpstreamOutcome.Success || host.Ejected)
        {
            return;
        }
        // Envoy checks gateway failures before 5xx, so a run of 503s is ejected under the stricter rule when it is enforced.
        if (gateway >= config.ConsecutiveGatewayFailure && Enforce(config.EnforcingGatewayFailure))
        {
            TryEject(host, _cluster.Stats.EjectionsGateway, "consecutive gateway failures");
        }
        else if (fiveXx >= config.Consecutive5xx && Enforce(config.Enforcing5xx))
        {
            TryEject(host, _cluster.Stats.EjectionsConsecutive5xx, "consecutive 5xx");
        }
        else if (config.SplitExternalLocalOriginErrors && localOrigin >= config.ConsecutiveLocalOriginFailure && Enforce(config.EnforcingLocalOriginFailure))
        {
            TryEject(host, _cluster.Stats.EjectionsLocalOrigin, "consecutive local-origin failures");
        }
    }

    private bool Enforce(int percent) => percent >= 100 || (percent > 0 && _random.Next(100) < percent);

    private void TryEject(UpstreamEndpoint host, Stats.Stat reason, string why)
    {
        lock (_lock)
        {
            // A host EDS just removed is not the cluster's to eject, nor counted against max_ejection_percent.
            if (host.Ejected || _cluster.Current is not { } current || !current.Hosts.All.Any(h => h.Endpoint == host))
            {
                return;
            }
            var config = Config;
            var total = current.Hosts.All.Count;
            var ejected = current.Hosts.All.Count(h => h.Endpoint.Ejected);
            // Envoy always allows one ejection, whatever max_ejection_percent says.
            if (ejected > 0 && (ejected + 1) * 100 > config.MaxEjectionPercent * total)
            {
                _cluster.Stats.EjectionsOverflow.Increment();
                return;
            }
            host.EjectionCount++;
            var duration = TimeSpan.FromTicks(Math.Min(config.BaseEjectionTime.Ticks * host.EjectionCount, config.MaxEjectionTime.Ticks));
            host.EjectedUntil = _time.GetTimestamp() + (long)(duration.TotalSeconds * _time.TimestampFrequency);
            host.Ejected = true;
            host.ResetOutlierCounters();
            _cluster.Stats.EjectionsActive.Increment();
            _cluster.Stats.EjectionsTotal.Increment();
            reason.Increment();
            LogEjected(_logger, _cluster.Name, host.ToString(), why, duration.TotalSeconds);
        }
        _cluster.HealthChanged();
    }

    /// <summary>The interval timer: un-eject hosts whose time is up; decay the multiplier of hosts not ejected.</summary>
    internal void Sweep()
    {
        var changed = false;
        lock (_lock)
        {
            if (_cluster.Current is not { } current)
            {
                return;
            }
            var now = _time.GetTimestamp();
            foreach (var host in current.Hosts.All.Select(h => h.Endpoint))
            {
                if (host.Ejected && now >= host.EjectedUntil)
                {
                    host.Ejected = false;
                    host.ResetOutlierCounters();
                    _cluster.Stats.EjectionsActive.Decrement();
                    changed = true;
                    LogReturned(_logger, _cluster.Name, host.ToString());
                }
                else if (!host.Ejected && host.EjectionCount > 0)
                {
                    host.EjectionCount--;
                }
            }
        }
        if (changed)
        {
            _cluster.HealthChanged();
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _timer, null)?.Dispose();
        lock (_lock)
        {
            // Hosts leave ejection with the detector: without outlier detection nothing would ever return them.
            foreach (var host in _cluster.Current?.Hosts.All.Select(h => h.Endpoint) ?? [])
            {
                if (host.Ejected)
                {
                    host.Ejected = false;
                    _cluster.Stats.EjectionsActive.Decrement();
                }
            }
        }
        _cluster.HealthChanged();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "outlier detection: ejected {Host} from {Cluster} ({Reason}) for {Seconds}s")]
    private static partial void LogEjected(ILogger logger, string cluster, string host, string reason, double seconds);

    [LoggerMessage(Level = LogLevel.Information, Message = "outlier detection: {Host} returns to {Cluster}")]
    private static partial void LogReturned(ILogger logger, string cluster, string host);
}
