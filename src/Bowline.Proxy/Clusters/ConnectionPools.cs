using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Clusters;

/// <summary>
/// The state of clusters that must outlive a config version: connection pools, balancers and endpoints, keyed by
/// cluster name. Used only by the xDS loop (single writer); what it hands out is thread-safe.
/// </summary>
internal sealed class ConnectionPools(TimeProvider time, Random random) : IDisposable
{
    /// <summary>A removed cluster's pool is disposed only after in-flight requests have had time to finish.</summary>
    private static readonly TimeSpan RetireDelay = TimeSpan.FromSeconds(60);

    private readonly Dictionary<string, (UpstreamProtocol Protocol, TimeSpan ConnectTimeout, HttpMessageInvoker Invoker)> _invokers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy Policy, ILoadBalancer Balancer)> _balancers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Cluster, string Address, int Port), UpstreamEndpoint> _endpoints = [];

    public HttpMessageInvoker Invoker(string cluster, UpstreamProtocol protocol, TimeSpan connectTimeout)
    {
        if (_invokers.TryGetValue(cluster, out var existing) && existing.Protocol == protocol && existing.ConnectTimeout == connectTimeout)
        {
            return existing.Invoker;
        }
        if (existing.Invoker is not null)
        {
            Retire(existing.Invoker);
        }
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = connectTimeout,
            EnableMultipleHttp2Connections = true,
            // Shorter than common server keep-alive timeouts (Kestrel 130 s, Node 5 s is the outlier; Go 90 s), so the
            // proxy closes idle connections before the server does: the classic source of opaque 503s.
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(4),
            ActivityHeadersPropagator = null,
        };
        var invoker = new HttpMessageInvoker(handler, disposeHandler: true);
        _invokers[cluster] = (protocol, connectTimeout, invoker);
        return invoker;
    }

    public ILoadBalancer Balancer(string cluster, Envoy.Config.Cluster.V3.Cluster.Types.LbPolicy policy)
    {
        if (_balancers.TryGetValue(cluster, out var existing) && existing.Policy == policy)
        {
            return existing.Balancer;
        }
        var balancer = LoadBalancers.Create(policy, random);
        _balancers[cluster] = (policy, balancer);
        return balancer;
    }

    public UpstreamEndpoint Endpoint(string cluster, string address, int port)
    {
        if (!_endpoints.TryGetValue((cluster, address, port), out var endpoint))
        {
            endpoint = new UpstreamEndpoint(address, port);
            _endpoints[(cluster, address, port)] = endpoint;
        }
        return endpoint;
    }

    /// <summary>Forgets clusters and endpoints no longer in the config; their pools close after a grace period.</summary>
    public void Prune(IReadOnlySet<string> liveClusters, IReadOnlySet<(string, string, int)> liveEndpoints)
    {
        foreach (var name in _invokers.Keys.Where(n => !liveClusters.Contains(n)).ToList())
        {
            Retire(_invokers[name].Invoker);
            _invokers.Remove(name);
        }
        foreach (var name in _balancers.Keys.Where(n => !liveClusters.Contains(n)).ToList())
        {
            _balancers.Remove(name);
        }
        foreach (var key in _endpoints.Keys.Where(k => !liveEndpoints.Contains(k)).ToList())
        {
            _endpoints.Remove(key);
        }
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
        foreach (var (_, _, invoker) in _invokers.Values)
        {
            invoker.Dispose();
        }
        _invokers.Clear();
    }
}
