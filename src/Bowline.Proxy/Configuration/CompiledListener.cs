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

/// <summary>A compiled HTTP connection manager: its routes (resolved from RDS or inline) and settings.</summary>
internal sealed class HttpChain(string statPrefix, string? routeConfigName, RouteTable? routes, bool websocket, bool generateRequestId, HttpChainStats stats)
{
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
internal sealed class CompiledListener(string name, IReadOnlyList<IPEndPoint> addresses, IReadOnlyDictionary<int, HttpChain> chainsByPort, HttpChain? defaultChain)
{
    public string Name { get; } = name;

    public IReadOnlyList<IPEndPoint> Addresses { get; } = addresses;

    /// <summary>The listener's identity for rebinding: same addresses, same sockets.</summary>
    public string AddressKey { get; } = string.Join(",", addresses.Select(a => a.ToString()).Order(StringComparer.Ordinal));

    /// <summary>Envoy's warming: a listener whose RDS routes have not arrived yet is not opened, so it never answers 404 for want of config.</summary>
    public bool IsWarm { get; } = chainsByPort.Values.Append(defaultChain).All(c => c is null || c.RouteConfigName is null || c.Routes is not null);

    public HttpChain? ChainFor(int localPort) => chainsByPort.TryGetValue(localPort, out var chain) ? chain : defaultChain;
}
