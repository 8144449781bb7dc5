using System.Net;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;

namespace Bowline.Proxy.Configuration;

/// <summary>Per-HCM counters (<c>http.&lt;stat_prefix&gt;.downstream_rq_*</c>).</summary>
internal sealed class HttpChainStats(ProxyStats stats, string prefix)
{
    public Stat RequestsTotal { get; } = stats.Get($"http.{prefix}.downstream_rq_total");
    public Stat Requests1xx { get; } = stats.Get($"http.{prefix}.downstream_rq_1xx");
    public Stat Requests2xx { get; } = stats.Get($"http.{prefix}.downstream_rq_2xx");
    public Stat Requests3xx { get; } = stats.Get($"http.{prefix}.downstream_rq_3xx");
    public Stat Requests4xx { get; } = stats.Get($"http.{prefix}.downstream_rq_4xx");
    public Stat Requests5xx { get; } = stats.Get($"http.{prefix}.downstream_rq_5xx");
    public Stat NoRoute { get; } = stats.Get($"http.{prefix}.no_route");
    public Stat NoCluster { get; } = stats.Get($"http.{prefix}.no_cluster");

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
internal sealed class HttpChain(string statPrefix, string? routeConfigName, RouteTable? routes, HttpFilterEntry[] filters, bool websocket, bool generateRequestId, HttpChainStats stats)
{
    /// <summary>The HCM's http_filters in order; the last is the router.</summary>
    public HttpFilterEntry[] Filters { get; } = filters;

    public string StatPrefix { get; } = statPrefix;

    /// <summary>The RDS name, or null for an inline route configuration.</summary>
    public string? RouteConfigName { get; } = routeConfigName;

    /// <summary>Null while the RDS resource has not arrived: requests get 404 NR, as Envoy answers before routes warm.</summary>
    public RouteTable? Routes { get; } = routes;

    public bool WebSocket { get; } = websocket;

    public bool GenerateRequestId { get; } = generateRequestId;

    public HttpChainStats Stats { get; } = stats;
}

/// <summary>A compiled listener: where it binds and, per destination port, which HTTP chain serves a connection.</summary>
internal sealed class CompiledListener(Envoy.Config.Listener.V3.Listener source, IReadOnlyList<IPEndPoint> addresses, IReadOnlyDictionary<int, HttpChain> chainsByPort, HttpChain? defaultChain)
{
    /// <summary>The LDS resource this was compiled from; an identical resource whose route tables are unchanged reuses this object.</summary>
    public Envoy.Config.Listener.V3.Listener Source { get; } = source;

    public string Name => Source.Name;

    /// <summary>Every chain of the listener, for reuse checks.</summary>
    public IEnumerable<HttpChain> Chains => chainsByPort.Values.Append(defaultChain).OfType<HttpChain>();

    public IReadOnlyList<IPEndPoint> Addresses { get; } = addresses;

    /// <summary>The listener's identity for rebinding: same addresses, same sockets.</summary>
    public string AddressKey { get; } = string.Join(",", addresses.Select(a => a.ToString()).Order(StringComparer.Ordinal));

    /// <summary>Envoy's warming: a listener whose RDS routes have not arrived yet is not opened, so it never answers 404 for want of config.</summary>
    public bool IsWarm { get; } = chainsByPort.Values.Append(defaultChain).All(c => c is null || c.RouteConfigName is null || c.Routes is not null);

    public HttpChain? ChainFor(int localPort) => chainsByPort.TryGetValue(localPort, out var chain) ? chain : defaultChain;
}
