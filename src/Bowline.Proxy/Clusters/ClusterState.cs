namespace Bowline.Proxy.Clusters;

/// <summary>What a request reads of a cluster: one config and the host set built under it, consistent with each other.</summary>
internal sealed record ClusterSnapshot(ClusterConfig Config, HostSet Hosts);

/// <summary>
/// The stable handle of one cluster name, as YARP's <c>ClusterState</c>: routes hold it, not a compiled cluster, so a
/// CDS or EDS update swaps what it points to without recompiling a single route. It outlives every config update and
/// holds the cluster's live state: the circuit-breaker counters, the outlier detector, the stats.
/// </summary>
/// <remarks>
/// <see cref="Current"/> is written by the xDS loop (on commit) and by health changes (under a lock), read lock-free by
/// every request. Null means the cluster is not in the current config: requests to it get 503 NC.
/// </remarks>
internal sealed class ClusterState
{
    private readonly Lock _healthLock = new();
    private ClusterSnapshot? _current;
    private IReadOnlyList<WeightedEndpoint> _endpoints = [];
    private int _activeRequests;
    private int _activeRetries;

    public ClusterState(string name, ClusterStats stats)
    {
        Name = name;
        Stats = stats;
    }

    public string Name { get; }

    public ClusterStats Stats { get; }

    public ClusterSnapshot? Current => Volatile.Read(ref _current);

    /// <summary>Requests in flight to this cluster, retries included (Envoy's <c>upstream_rq_active</c>).</summary>
    public int ActiveRequests => Volatile.Read(ref _activeRequests);

    public int ActiveRetries => Volatile.Read(ref _activeRetries);

    /// <summary>Set while the cluster has outlier detection; owned by the state so ejections survive config pushes.</summary>
    public Outlier.OutlierDetector? OutlierDetector { get; set; }

    /// <summary>Publishes a new config and assignment (from the xDS loop, when an update is committed).</summary>
    public void Publish(ClusterConfig config, HostSet hosts)
    {
        lock (_healthLock)
        {
            _endpoints = hosts.All;
            Set(new ClusterSnapshot(config, hosts));
        }
    }

    /// <summary>New hosts for the current config (a DNS cluster's re-resolution); ignored if the cluster went away meanwhile.</summary>
    public void PublishHosts(IReadOnlyList<WeightedEndpoint> endpoints)
    {
        lock (_healthLock)
        {
            if (Current is not { } current)
            {
                return;
            }
            if (endpoints.Select(e => (e.Endpoint, e.Weight, e.Priority)).SequenceEqual(_endpoints.Select(e => (e.Endpoint, e.Weight, e.Priority))))
            {
                return;
            }
            _endpoints = endpoints;
            Set(current with { Hosts = new HostSet(null, endpoints, current.Config.HostPolicy) });
        }
    }

    /// <summary>Set while the cluster has an active health check.</summary>
    public Health.HealthChecker? HealthChecker { get; set; }

    /// <summary>Set while the cluster is a STRICT_DNS or LOGICAL_DNS cluster.</summary>
    public Dns.DnsRefresher? DnsRefresher { get; set; }

    /// <summary>The cluster left the config: requests now get 503 NC.</summary>
    public void Remove()
    {
        lock (_healthLock)
        {
            _endpoints = [];
            Volatile.Write(ref _current, null);
            Interlocked.Exchange(ref _reweigh, null)?.Dispose();
            Stats.MembershipTotal.Set(0);
            Stats.MembershipHealthy.Set(0);
        }
    }

    /// <summary>A host's ejection or health-check verdict changed: rebuild the host set under the current config.</summary>
    public void HealthChanged()
    {
        lock (_healthLock)
        {
            if (Current is { } current)
            {
                Set(current with { Hosts = new HostSet(current.Hosts.Source, _endpoints, current.Config.HostPolicy) });
            }
        }
    }

    /// <summary>Counts a request in flight; returns the cluster's active requests including it.</summary>
    public int RequestStarted(bool retry)
    {
        var active = Interlocked.Increment(ref _activeRequests);
        Stats.RequestsActive.Increment();
        if (retry)
        {
            Interlocked.Increment(ref _activeRetries);
        }
        return active;
    }

    public void RequestEnded(bool retry)
    {
        Interlocked.Decrement(ref _activeRequests);
        Stats.RequestsActive.Decrement();
        if (retry)
        {
            Interlocked.Decrement(ref _activeRetries);
        }
    }

    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes when <paramref name="condition"/> holds for this cluster, checked now and after every change of config or hosts (admin and tests).</summary>
    public async Task WaitUntilAsync(Func<ClusterSnapshot?, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            var changed = Volatile.Read(ref _changed).Task;
            if (condition(Current))
            {
                return;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private ITimer? _reweigh;

    private void Set(ClusterSnapshot snapshot)
    {
        Volatile.Write(ref _current, snapshot);
        // Slow start: while a host warms, its weight is raised by rebuilding the set at the policy's step.
        Interlocked.Exchange(ref _reweigh, null)?.Dispose();
        if (snapshot.Hosts.ReweighAfter is { } after && snapshot.Config.HostPolicy.SlowStart is { } slowStart)
        {
            _reweigh = slowStart.Time.CreateTimer(static state => ((ClusterState)state!).HealthChanged(), this, after, Timeout.InfiniteTimeSpan);
        }
        Interlocked.Exchange(ref _changed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        Stats.MembershipTotal.Set(snapshot.Hosts.All.Count);
        Stats.MembershipHealthy.Set(snapshot.Hosts.HealthyCount);
    }
}
