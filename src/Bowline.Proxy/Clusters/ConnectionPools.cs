using Bowline.Proxy.Clusters.LoadBalancing;

namespace Bowline.Proxy.Clusters;

/// <summary>How a cluster's connections are made and kept; a change replaces the pool.</summary>
/// <remarks>
/// <see cref="Tls"/>: some endpoint may be reached over TLS (which the connect callback originates); part of the pool's
/// identity, so a cluster that turns TLS on or off gets a new pool and never reuses a connection opened the other way.
/// <see cref="MaxRequestsPerConnection"/>: above 1, each HTTP/1.1 connection carries at most that many requests (Envoy's
/// max_requests_per_connection; 1 is the router's <c>Connection: close</c>, and HTTP/2 connections are not counted).
/// </remarks>
internal sealed record PoolSettings(TimeSpan ConnectTimeout, int MaxConnectionsPerHost, TimeSpan IdleTimeout, TimeSpan MaxConnectionDuration, TcpKeepalive? Keepalive, bool Tls = false,
    int MaxRequestsPerConnection = 0)
{
    /// <summary>
    /// Shorter than common server keep-alive timeouts (Node's 5 s is the shortest; Kestrel 130 s, Go 90 s), so the proxy
    /// closes an idle connection before the server does: the classic source of opaque 503s.
    /// </summary>
    public static readonly TimeSpan DefaultIdleTimeout = TimeSpan.FromSeconds(4);

    /// <summary>A cluster with none of the settings: Envoy's 5 s connect timeout, no limits, no keepalive probes.</summary>
    public static readonly PoolSettings Default = new(TimeSpan.FromSeconds(5), int.MaxValue, DefaultIdleTimeout, Timeout.InfiniteTimeSpan, null);
}

/// <summary>TCP keepalive probes (Envoy's upstream_connection_options.tcp_keepalive), in seconds.</summary>
internal sealed record TcpKeepalive(int TimeSeconds, int IntervalSeconds, int Probes);

/// <summary>
/// The state of clusters that must outlive a config version: connection pools, balancers and endpoints, keyed by
/// cluster name. Changes made while compiling a candidate config are a transaction: <see cref="Commit"/> once the
/// candidate is live (replaced pools then close after a grace period), <see cref="Rollback"/> when it is rejected (the
/// live snapshot keeps exactly the pools it had). Used only by the xDS loop (single writer); what it hands out is
/// thread-safe.
/// </summary>
internal sealed class ConnectionPools(TimeProvider time, Random random, Tls.SecretStore secrets) : IDisposable
{
    /// <summary>
    /// A replaced or removed pool starts draining this long after the commit: a request that read the previous
    /// snapshot just before the switch may still be about to enter it. It then closes when its last request ends.
    /// </summary>
    private static readonly TimeSpan DrainGrace = TimeSpan.FromSeconds(5);

    /// <summary>The clock endpoints are stamped with (slow start reads it too).</summary>
    public TimeProvider Time => time;

    private readonly Dictionary<string, (PoolSettings Settings, UpstreamPool Invoker)> _invokers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, (string Key, ILoadBalancer Balancer)> _balancers = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Cluster, string Address, int Port), UpstreamEndpoint> _endpoints = [];
    private readonly List<Action> _undo = [];
    private readonly List<Action> _onCommit = [];
    private readonly HashSet<UpstreamEndpoint> _joined = [];
    private readonly List<UpstreamPool> _created = [];
    private readonly List<UpstreamPool> _retiring = [];

    public UpstreamPool Invoker(string cluster, PoolSettings settings)
    {
        if (_invokers.TryGetValue(cluster, out var existing) && existing.Settings == settings)
        {
            return existing.Invoker;
        }
        var handler = new SocketsHttpHandler
        {
            UseProxy = false,
            AllowAutoRedirect = false,
            AutomaticDecompression = System.Net.DecompressionMethods.None,
            UseCookies = false,
            ConnectTimeout = settings.ConnectTimeout,
            EnableMultipleHttp2Connections = true,
            // Istio's maxConnections is per upstream host, which is what this limit is.
            MaxConnectionsPerServer = settings.MaxConnectionsPerHost,
            PooledConnectionIdleTimeout = settings.IdleTimeout,
            PooledConnectionLifetime = settings.MaxConnectionDuration,
            // The proxy forwards the app's trace headers; it must not add its own.
            ActivityHeadersPropagator = null,
        };
        var countsRequests = settings.MaxRequestsPerConnection > 1;
        // Always the proxy's own callback: its sockets are data-path sockets (DataPathThreading), whatever the settings.
        handler.ConnectCallback = (context, cancellationToken) => ConnectAsync(context, settings, secrets, cancellationToken);
        var invoker = new UpstreamPool(handler, countsRequests);
        _created.Add(invoker);
        Replace(_invokers, cluster, (settings, invoker), existing, existing.Invoker is not null);
        if (existing.Invoker is not null)
        {
            _retiring.Add(existing.Invoker);
        }
        return invoker;
    }

    /// <summary>The cluster's balancer; kept (with its round-robin cursor) while the policy and its settings are unchanged.</summary>
    public ILoadBalancer Balancer(Envoy.Config.Cluster.V3.Cluster cluster)
    {
        var key = $"{cluster.LbPolicy}|{cluster.RingHashLbConfig}|{cluster.MaglevLbConfig}";
        if (_balancers.TryGetValue(cluster.Name, out var existing) && existing.Key == key)
        {
            return existing.Balancer;
        }
        var balancer = LoadBalancers.Create(cluster, random);
        Replace(_balancers, cluster.Name, (key, balancer), existing, existing.Balancer is not null);
        return balancer;
    }

    /// <summary>The request option carrying the TLS an attempt's endpoint is reached with (null: plaintext).</summary>
    public static readonly HttpRequestOptionsKey<Tls.UpstreamTls?> TlsOption = new("bowline.upstream_tls");

    /// <summary>
    /// Where to connect when the request URI names the SNI host instead of the endpoint (auto_sni), so the handler pools
    /// connections per server name, as Envoy keys its pools by SNI: a connection verified for one host never serves another.
    /// </summary>
    public static readonly HttpRequestOptionsKey<System.Net.DnsEndPoint> AddressOption = new("bowline.upstream_address");

    /// <summary>The endpoint a TLS connection is opened to, which learns the mesh identity its server proved.</summary>
    public static readonly HttpRequestOptionsKey<UpstreamEndpoint> EndpointOption = new("bowline.upstream_endpoint");

    /// <summary>
    /// Opens a connection the way the cluster's settings say: TCP keepalive probes, and TLS originated by the proxy
    /// (the endpoint's transport socket, carried on the request that opened the connection). The handler itself always
    /// speaks cleartext HTTP over the stream returned, so mesh ALPN, SNI and SAN checks stay the proxy's. With
    /// max_requests_per_connection above 1, an HTTP/1.1 connection is handed over inside a
    /// <see cref="RequestLimitedStream"/>, which opens its successors the same way.
    /// </summary>
    private static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, PoolSettings settings, Tls.SecretStore secrets, CancellationToken cancellationToken)
    {
        var initial = context.InitialRequestMessage;
        var target = initial.Options.TryGetValue(AddressOption, out var address) ? address : context.DnsEndPoint;
        initial.Options.TryGetValue(TlsOption, out var tls);
        var requestHost = tls is not null && initial.Headers.Host is { } authority ? authority.Split(':')[0] : null;
        initial.Options.TryGetValue(EndpointOption, out var endpoint);
        var keepalive = settings.Keepalive;
        var stream = await OpenAsync(target, keepalive, tls, requestHost, endpoint, secrets, cancellationToken).ConfigureAwait(false);
        if (settings.MaxRequestsPerConnection <= 1 || UpstreamPool.Http2(initial))
        {
            return stream;
        }
        // What the successors need is captured here, not the request: the connection outlives it.
        return new RequestLimitedStream(stream, settings.MaxRequestsPerConnection, settings.ConnectTimeout,
            token => OpenAsync(target, keepalive, tls, requestHost, endpoint, secrets, token));
    }

    private static async ValueTask<Stream> OpenAsync(System.Net.DnsEndPoint target, TcpKeepalive? keepalive, Tls.UpstreamTls? tls, string? requestHost, UpstreamEndpoint? endpoint,
        Tls.SecretStore secrets, CancellationToken cancellationToken)
    {
        var socket = await ConnectSocketAsync(target, keepalive, cancellationToken).ConfigureAwait(false);
        var stream = new System.Net.Sockets.NetworkStream(socket, ownsSocket: true);
        if (tls is null)
        {
            return stream;
        }
        try
        {
            return await tls.ConnectAsync(stream, target.Host, requestHost, secrets, cancellationToken, endpoint).ConfigureAwait(false);
        }
        catch
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            throw;
        }
    }

    /// <summary>Opens a TCP connection with the cluster's keepalive probes (the HTTP pools and the TCP proxy both connect this way).</summary>
    public static async ValueTask<System.Net.Sockets.Socket> ConnectSocketAsync(System.Net.EndPoint target, TcpKeepalive? keepalive, CancellationToken cancellationToken)
    {
        var socket = new System.Net.Sockets.Socket(System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Tcp) { NoDelay = true };
        try
        {
            Listeners.DataPathThreading.Adopt(socket);
            if (keepalive is not null)
            {
                socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Socket, System.Net.Sockets.SocketOptionName.KeepAlive, true);
                socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Tcp, System.Net.Sockets.SocketOptionName.TcpKeepAliveTime, keepalive.TimeSeconds);
                socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Tcp, System.Net.Sockets.SocketOptionName.TcpKeepAliveInterval, keepalive.IntervalSeconds);
                socket.SetSocketOption(System.Net.Sockets.SocketOptionLevel.Tcp, System.Net.Sockets.SocketOptionName.TcpKeepAliveRetryCount, keepalive.Probes);
            }
            await socket.ConnectAsync(target, cancellationToken).ConfigureAwait(false);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public UpstreamEndpoint Endpoint(string cluster, string address, int port)
    {
        if (!_endpoints.TryGetValue((cluster, address, port), out var endpoint))
        {
            endpoint = new UpstreamEndpoint(address, port) { JoinedAt = time.GetTimestamp() };
            Replace(_endpoints, (cluster, address, port), endpoint, endpoint, hadPrevious: false);
            _joined.Add(endpoint);
        }
        return endpoint;
    }

    /// <summary>
    /// Labels an endpoint with the workload the candidate says it is: at once when the candidate added the endpoint,
    /// at <see cref="Commit"/> when the live snapshot already uses it, so a rejected update never relabels its metrics.
    /// </summary>
    public void Label(UpstreamEndpoint endpoint, Telemetry.WorkloadMetadata? workload)
    {
        if (ReferenceEquals(endpoint.Workload, workload))
        {
            return;
        }
        if (_joined.Contains(endpoint))
        {
            endpoint.Workload = workload;
        }
        else
        {
            _onCommit.Add(() => endpoint.Workload = workload);
        }
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
        foreach (var apply in _onCommit)
        {
            apply();
        }
        _onCommit.Clear();
        _joined.Clear();
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
        _onCommit.Clear();
        _joined.Clear();
    }

    private void Replace<TKey, TValue>(Dictionary<TKey, TValue> map, TKey key, TValue value, TValue previous, bool hadPrevious)
        where TKey : notnull
    {
        map[key] = value;
        _undo.Add(hadPrevious ? () => map[key] = previous : () => map.Remove(key));
    }

    private void Retire(UpstreamPool pool)
    {
        ITimer? timer = null;
        timer = time.CreateTimer(_ =>
        {
            pool.Drain();
            timer?.Dispose();
        }, null, DrainGrace, Timeout.InfiniteTimeSpan);
    }

    public void Dispose()
    {
        Commit();
        foreach (var (_, invoker) in _invokers.Values)
        {
            invoker.Dispose();
        }
        _invokers.Clear();
    }
}
