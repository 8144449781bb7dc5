using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Clusters;

/// <summary>
/// The state of clusters that must outlive a config version: connection pools, balancers and endpoints, keyed by
/// cluster name. Changes made while compiling a candidate config are a transaction: <see cref="Commit"/> once the
/// candidate is live (replaced pools then close after a grace period), <see cref="Rollback"/> when it is rejected (the
/// live snapshot keeps exactly the pools it had). Used only by the xDS loop (single writer); what it hands out is
/// thread-safe.
/// </summary>
internal sealed class ConnectionPools(TimeProvider time, Random random) : IDisposable
{
    /// <summary>A removed cluster's pool is disposed only after in-flight requests have had time to finish.</summary>
    private static readonly TimeSpan RetireDelay = TimeSpan.FromSeconds(60);

    private readonly Dictionary<string, (UpstreamProtocol Protocol, TimeSpan ConnectTimeout, HttpMessageInvoker Invoker)> _invokers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy Policy, ILoadBalancer Balancer)> _balancers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Cluster, string Address, int Port), UpstreamEndpoint> _endpoints = [];
    private readonly List<Action> _undo = [];
    private readonly List<HttpMessageInvoker> _created = [];
    private readonly List<HttpMessageInvoker> _retiring = [];

    public HttpMessageInvoker Invoker(string cluster, UpstreamProtocol protocol, TimeSpan connectTimeout)
    {
        if (_invokers.TryGetValue(cluster, out var existing) && existing.Protocol == protocol && existing.ConnectTimeout == connectTimeout)
        {
            return existing.Invoker;
        }
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = connectTimeout,
            EnableMultipleHttp2Connections = true,
            // Shorter than common server keep-alive timeouts (Node's 5 s is the shortest; Kestrel 130 s, Go 90 s), so the
            // proxy closes an idle connection before the server does: the classic source of opaque 503s.
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
            // The proxy forwards the app's trace headers; it must not add its own.
            ActivityHeadersPropagator = null,
        };
        var invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        _created.Add(invoker);
        Replace(_invokers, cluster, (protocol, connectTimeout, invoker), existing, existing.Invoker is not null);
        if (existing.Invoker is not null)
        {
            _retiring.Add(existing.Invoker);
        }
        return invoker;
    }

    public ILoadBalancer Balancer(string cluster, Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy policy)
    {
        if (_balancers.TryGetValue(cluster, out var existing) && existing.Policy == policy)
        {
            return existing.Balancer;
        }
        var balancer = LoadBalancers.Create(policy, random, cluster);
        Replace(_balancers, cluster, (policy, balancer), existing, existing.Balancer is not null);
        return balancer;
    }

    public UpstreamEndpoint Endpoint(string cluster, string address, int port)
    {
        if (!_endpoints.TryGetValue((cluster, address, port), out var endpoint))
        {
            endpoint = new UpstreamEndpoint(address, port);
            Replace(_endpoints, (cluster, address, port), endpoint, endpoint, hadPrevious: false);
        }
        return endpoint;
    }

    /// <summary>Forgets clusters and endpoints no longer in the candidate config; their pools close after <see cref="Commit"/>.</summary>
    public void Prune(IReadOnlySet<string> liveClusters, IReadOnlySet<(string, string, int)> liveEndpoints)
    {
        foreach (var name in _invokers.Keys.Where(n => !liveClusters.Contains(n)).ToList())
        {
            var removed = _invokers[name];
            _retiring.Add(removed.Invoker);
            _invokers.Remove(name);
            _undo.Add(() => _invokers[name] = removed);
        }
        foreach (var name in _balancers.Keys.Where(n => !liveClusters.Contains(n)).ToList())
        {
            var removed = _balancers[name];
            _balancers.Remove(name);
            _undo.Add(() => _balancers[name] = removed);
        }
        foreach (var key in _endpoints.Keys.Where(k => !liveEndpoints.Contains(k)).ToList())
        {
            var removed = _endpoints[key];
            _endpoints.Remove(key);
            _undo.Add(() => _endpoints[key] = removed);
        }
    }

    /// <summary>The candidate config is live: replaced and pruned pools start their grace period.</summary>
    public void Commit()
    {
        foreach (var invoker in _retiring)
        {
            Retire(invoker);
        }
        _retiring.Clear();
        _created.Clear();
        _undo.Clear();
    }

    /// <summary>The candidate config was rejected: restore what the live snapshot uses and close what was opened for it.</summary>
    public void Rollback()
    {
        for (var i = _undo.Count - 1; i >= 0; i--)
        {
            _undo[i]();
        }
        foreach (var invoker in _created)
        {
            invoker.Dispose();
        }
        _undo.Clear();
        _created.Clear();
        _retiring.Clear();
    }

    private void Replace<TKey, TValue>(Dictionary<TKey, TValue> map, TKey key, TValue value, TValue previous, bool hadPrevious)
        where TKey : notnull
    {
        map[key] = value;
        _undo.Add(hadPrevious ? () => map[key] = previous : () => map.Remove(key));
    }

    private void Retire(HttpMessageInvoker invoker)
    {
        ITimer? timer = null;
        timer = time.CreateTimer(_ =>
        {
            invoker.Dispose();
            timer?.Dispose();
        }, null, RetireDelay, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        Commit();
        foreach (var (_, _, invoker) in _invokers.Values)
        {
            invoker.Dispose();
        }
        _invokers.Clear();
    }
}
