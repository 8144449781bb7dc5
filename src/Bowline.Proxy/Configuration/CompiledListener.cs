using System.Net;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;

namespace Bowline.Proxy.Configuration;

/// <summary>Per-HCM counters (<c>http.&lt;stat_prefix&gt;.downstream_rq_*</c>).</summary>
internal sealed class HttpChainStats(ProxyStats stats, string prefix)
{
    public Stat RequestsTotal { get; } = stats.Get(StatTag.Http(prefix), "downstream_rq_total");
    public Stat Requests1xx { get; } = stats.Get(StatTag.Http(prefix), "downstream_rq_1xx");
    public Stat Requests2xx { get; } = stats.Get(StatTag.Http(prefix), "downstream_rq_2xx");
    public Stat Requests3xx { get; } = stats.Get(StatTag.Http(prefix), "downstream_rq_3xx");
    public Stat Requests4xx { get; } = stats.Get(StatTag.Http(prefix), "downstream_rq_4xx");
    public Stat Requests5xx { get; } = stats.Get(StatTag.Http(prefix), "downstream_rq_5xx");
    public Stat NoRoute { get; } = stats.Get(StatTag.Http(prefix), "no_route");
    public Stat NoCluster { get; } = stats.Get(StatTag.Http(prefix), "no_cluster");

    public void Completed(int status)
    {
        (status switch
        {
            < 200 => Requests1xx,
            < 300 => Requests2xx,
            < 400 => Requests3xx,
            < 500 => Requests4xx,
            _ => Requests5xx,
        }).Increment();
    }
}

/// <summary>One compiled HTTP filter of a chain; <see cref="DisabledByDefault"/> is Envoy's <c>disabled</c> (a route must enable it).</summary>
internal sealed record HttpFilterEntry(Filters.Http.IHttpFilter Filter, bool DisabledByDefault);

/// <summary>A compiled HTTP connection manager: its routes (resolved from RDS or inline), its filters (the router last) and settings.</summary>
internal sealed class HttpChain(string statPrefix, string? routeConfigName, RouteTable? routes, HttpFilterEntry[] filters, bool websocket, bool generateRequestId, HttpChainStats stats,
    Http.PathNormalization? paths = null, Http.ClientCertForwarding? clientCerts = null)
{
    /// <summary>The HCM's access_log entries, each run when a request ends.</summary>
    public AccessLogs.AccessLogger[] AccessLogs { get; init; } = [];

    /// <summary>The HCM's tracing; null when it traces nothing (no provider).</summary>
    public Tracing.HttpTracing? Tracing { get; init; }

    /// <summary>What becomes of <c>x-forwarded-client-cert</c> before any filter runs.</summary>
    public Http.ClientCertForwarding ClientCerts { get; } = clientCerts ?? Http.ClientCertForwarding.Default;

    /// <summary>How request paths are normalized before routing (and so before RBAC and the upstream see them).</summary>
    public Http.PathNormalization Paths { get; } = paths ?? Http.PathNormalization.Default;

    /// <summary>The HCM's http_filters in order; the last is the router.</summary>
    public HttpFilterEntry[] Filters { get; } = filters;

    /// <summary>The filters that report on every finished request (Istio's stats), in chain order.</summary>
    public Filters.Http.IHttpStreamObserver[] Observers { get; } = [.. filters.Select(f => f.Filter).OfType<Filters.Http.IHttpStreamObserver>()];

    public string StatPrefix { get; } = statPrefix;

    /// <summary>The RDS name, or null for an inline route configuration.</summary>
    public string? RouteConfigName { get; } = routeConfigName;

    /// <summary>Null while the RDS resource has not arrived: requests get 404 NR, as Envoy answers before routes warm.</summary>
    public RouteTable? Routes { get; } = routes;

    public bool WebSocket { get; } = websocket;

    public bool GenerateRequestId { get; } = generateRequestId;

    public HttpChainStats Stats { get; } = stats;
}

/// <summary>
/// One compiled filter chain of a listener: the TLS it terminates (null for cleartext) and what serves its connections,
/// an HTTP connection manager or a TCP proxy (exactly one of them; a chain with neither is refused at compile time).
/// </summary>
internal sealed class CompiledFilterChain(string name, HttpChain? http, Tls.DownstreamTls? tls, Filters.Network.TcpProxy.TcpProxyConfig? tcp = null)
{
    public string Name { get; } = name;

    /// <summary>The network RBAC filters before the TCP proxy, in order: each must admit the connection.</summary>
    public IReadOnlyList<Filters.Network.Rbac.NetworkRbacConfig> NetworkRbac { get; init; } = [];

    public HttpChain? Http { get; } = http;

    public Filters.Network.TcpProxy.TcpProxyConfig? Tcp { get; } = tcp;

    public Tls.DownstreamTls? Tls { get; } = tls;
}

/// <summary>A listener's counters, Envoy's <c>listener.&lt;address&gt;.*</c>: connections, no chain matched, TLS handshakes and their failures.</summary>
internal sealed class ListenerStats(ProxyStats stats, string prefix)
{
    public Stat ConnectionsTotal { get; } = stats.Get(StatTag.Listener(prefix), "downstream_cx_total");
    public Stat NoFilterChainMatch { get; } = stats.Get(StatTag.Listener(prefix), "no_filter_chain_match");
    public Stat ListenerFilterTimeout { get; } = stats.Get(StatTag.Listener(prefix), "downstream_pre_cx_timeout");
    public Stat Handshakes { get; } = stats.Get(StatTag.Listener(prefix), "ssl.handshake");
    public Stat ConnectionErrors { get; } = stats.Get(StatTag.Listener(prefix), "ssl.connection_error");
    public Stat NoCertificate { get; } = stats.Get(StatTag.Listener(prefix), "ssl.fail_verify_no_cert");
    public Stat VerifyError { get; } = stats.Get(StatTag.Listener(prefix), "ssl.fail_verify_error");
    public Stat VerifySan { get; } = stats.Get(StatTag.Listener(prefix), "ssl.fail_verify_san");
    public Stat SecretMissing { get; } = stats.Get(StatTag.Listener(prefix), "ssl.secret_not_ready");
}

/// <summary>
/// A compiled listener: where it binds, which listener filters inspect a new connection, and how a connection's
/// metadata picks its filter chain (Envoy's filter_chain_match).
/// </summary>
internal sealed class CompiledListener(Envoy.Config.Listener.V3.Listener source, IReadOnlyList<IPEndPoint> addresses, FilterChainMatcher<CompiledFilterChain> chains,
    Listeners.ListenerFilters.ListenerFilterPredicate? tlsInspector, Listeners.ListenerFilters.ListenerFilterPredicate? httpInspector, TimeSpan listenerFiltersTimeout, ListenerStats stats)
{
    /// <summary>The LDS resource this was compiled from; an identical resource whose route tables are unchanged reuses this object.</summary>
    public Envoy.Config.Listener.V3.Listener Source { get; } = source;

    public string Name => Source.Name;

    /// <summary>Every HTTP chain of the listener, for reuse checks.</summary>
    public IEnumerable<HttpChain> Chains => FilterChains.All.Select(c => c.Http).OfType<HttpChain>();

    /// <summary>Some chain is an HTTP connection manager (which reads the first bytes for the h2c preface).</summary>
    public bool ServesHttp { get; } = chains.All.Any(c => c.Http is not null);

    /// <summary>The clusters the listener's TCP proxies send to (routes name the HTTP chains' clusters).</summary>
    public IEnumerable<string> TcpClusterNames => FilterChains.All.Select(c => c.Tcp).OfType<Filters.Network.TcpProxy.TcpProxyConfig>().SelectMany(t => t.ClusterNames);

    public FilterChainMatcher<CompiledFilterChain> FilterChains { get; } = chains;

    public IReadOnlyList<IPEndPoint> Addresses { get; } = addresses;

    /// <summary>Envoy's tls_inspector is configured: read the ClientHello (SNI, ALPN) before choosing a chain.</summary>
    public bool TlsInspector => tlsInspector is not null;

    /// <summary>Envoy's http_inspector is configured: tell h2c and HTTP/1.x apart on cleartext before choosing a chain.</summary>
    public bool HttpInspector => httpInspector is not null;

    /// <summary>The TLS inspector runs on a connection to this port (configured, and its filter_disabled does not skip it).</summary>
    public bool RunsTlsInspector(int destinationPort) => tlsInspector?.Matches(destinationPort) == false;

    /// <summary>The HTTP inspector runs on a connection to this port.</summary>
    public bool RunsHttpInspector(int destinationPort) => httpInspector?.Matches(destinationPort) == false;

    /// <summary>Envoy's listener_filters_timeout: how long the inspectors wait for a connection's first bytes.</summary>
    public TimeSpan ListenerFiltersTimeout { get; } = listenerFiltersTimeout;

    public ListenerStats Stats { get; } = stats;

    /// <summary>The listener's identity for rebinding: same addresses, same sockets.</summary>
    public string AddressKey { get; } = string.Join(",", addresses.Select(a => a.ToString()).Order(StringComparer.Ordinal));

    /// <summary>Envoy's warming: a listener whose RDS routes have not arrived yet is not opened, so it never answers 404 for want of config.</summary>
    public bool IsWarm { get; } = chains.All.All(c => c.Http is null || c.Http.RouteConfigName is null || c.Http.Routes is not null);

    public CompiledFilterChain? Match(Listeners.ConnectionMetadata connection) => FilterChains.Match(connection);

    /// <summary>The HTTP chain a cleartext connection to <paramref name="localPort"/> gets (tests and admin).</summary>
    public HttpChain? ChainFor(int localPort) => Match(Listeners.ConnectionMetadata.Plaintext(localPort))?.Http;
}
