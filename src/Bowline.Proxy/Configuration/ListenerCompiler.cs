using System.Net;
using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// Compiles LDS listeners: addresses, filter chains by destination port, and each chain's HTTP connection manager
/// with its filter chain built through the <see cref="HttpFilterCatalog"/> (the router last). Route tables come from
/// the caller, which reuses those whose RDS resource did not change.
/// </summary>
internal sealed class ListenerCompiler(HttpFilterCatalog catalog, Clusters.ClusterManager clusters, ProxyStats stats, TimeProvider time, Random random, ILoggerFactory loggers, AccessLogs.AccessLogFiles accessLogs,
    Telemetry.IstioMetrics metrics, Telemetry.LocalWorkload local, Tracing.SpanSinks spanSinks)
{
    // Stats objects by name; like the stats themselves they live as long as the proxy. Used by the xDS loop only.
    private readonly Dictionary<string, HttpChainStats> _chainStats = new(StringComparer.Ordinal);

    public CompiledListener Compile(Listener listener, Func<string, RouteTable?> rds, Func<RouteConfiguration, RouteTable> inline)
    {
        var where = $"listener {listener.Name}";
        XdsFields.Check(listener, where, "name", "address", "additional_addresses", "filter_chains", "default_filter_chain", "listener_filters",
            "listener_filters_timeout", "continue_on_listener_filters_timeout", "traffic_direction");
        var addresses = new List<IPEndPoint> { Endpoint(listener.Address, where) };
        addresses.AddRange(listener.AdditionalAddresses.Select(a => Endpoint(a.Address, where + " additional_addresses")));
        var (tlsInspector, httpInspector) = ListenerFilters(listener, where);

        var chains = new List<(FilterChainCriteria, CompiledFilterChain)>();
        foreach (var chain in listener.FilterChains)
        {
            var cwhere = $"{where} filter chain {chain.Name}";
            chains.Add((new FilterChainCriteria(chain.FilterChainMatch, cwhere), CompileChain(chain, cwhere, rds, inline, listener.TrafficDirection)));
        }
        var defaultChain = listener.DefaultFilterChain is { } fallback ? CompileChain(fallback, $"{where} default_filter_chain", rds, inline, listener.TrafficDirection) : null;
        if (chains.Count == 0 && defaultChain is null)
        {
            throw new ProxyConfigException($"{where}: no filter chains");
        }
        var matcher = new FilterChainMatcher<CompiledFilterChain>(chains, defaultChain, where);
        if (matcher.NeedsTlsInspection && tlsInspector is null)
        {
            throw new ProxyConfigException($"{where}: a filter_chain_match uses server_names, transport_protocol tls or application_protocols, which need the envoy.filters.listener.tls_inspector listener filter");
        }
        // Envoy's default listener_filters_timeout is 15 s; 0 means none.
        var timeout = listener.ListenerFiltersTimeout?.ToTimeSpan() is { } t ? (t <= TimeSpan.Zero ? Timeout.InfiniteTimeSpan : t) : TimeSpan.FromSeconds(15);
        return new CompiledListener(listener, addresses, matcher, tlsInspector, httpInspector, timeout, ListenerStatsFor(addresses[0]));
    }

    private const string TlsInspectorType = "type.googleapis.com/envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector";
    private const string HttpInspectorType = "type.googleapis.com/envoy.extensions.filters.listener.http_inspector.v3.HttpInspector";

    /// <summary>
    /// The listener filters Bowline runs: the TLS and HTTP inspectors, each with the ports its <c>filter_disabled</c>
    /// skips (null: not configured). Any other listener filter is a NACK naming it.
    /// </summary>
    private static (Listeners.ListenerFilters.ListenerFilterPredicate? Tls, Listeners.ListenerFilters.ListenerFilterPredicate? Http) ListenerFilters(Listener listener, string where)
    {
        Listeners.ListenerFilters.ListenerFilterPredicate? tls = null, http = null;
        foreach (var filter in listener.ListenerFilters)
        {
            var fwhere = $"{where} listener_filters {filter.Name}";
            XdsFields.Check(filter, fwhere, "name", "typed_config", "filter_disabled");
            switch (filter.TypedConfig?.TypeUrl)
            {
                case TlsInspectorType:
                    // TlsInspector's fields (enable_ja3_fingerprinting, initial_read_buffer_size) tune what Bowline does not do.
                    tls = Listeners.ListenerFilters.ListenerFilterPredicate.Compile(filter.FilterDisabled, fwhere + " filter_disabled");
                    break;
                case HttpInspectorType:
                    http = Listeners.ListenerFilters.ListenerFilterPredicate.Compile(filter.FilterDisabled, fwhere + " filter_disabled");
                    break;
                default:
                    throw new ProxyConfigException($"{where}: listener filter {filter.Name} ({filter.TypedConfig?.TypeUrl ?? "no typed_config"}) is not supported; Bowline runs envoy.filters.listener.tls_inspector and envoy.filters.listener.http_inspector");
            }
        }
        return (tls, http);
    }

    private readonly Dictionary<string, ListenerStats> _listenerStats = new(StringComparer.Ordinal);

    private ListenerStats ListenerStatsFor(IPEndPoint address)
    {
        var prefix = $"{address.Address}_{address.Port}";
        if (!_listenerStats.TryGetValue(prefix, out var listenerStats))
        {
            listenerStats = _listenerStats[prefix] = new ListenerStats(stats, prefix);
        }
        return listenerStats;
    }

    private CompiledFilterChain CompileChain(FilterChain chain, string where, Func<string, RouteTable?> rds, Func<RouteConfiguration, RouteTable> inline, Envoy.Config.Core.V3.TrafficDirection direction)
    {
        XdsFields.Check(chain, where, "name", "filter_chain_match", "filters", "transport_socket");
        var tls = chain.TransportSocket is { } socket ? Tls.DownstreamTls.Compile(socket, where) : null;
        if (chain.Filters.Count > 0 && chain.Filters[^1].TypedConfig?.TypeUrl == Filters.Network.TcpProxy.TcpProxyConfig.TypeUrl)
        {
            // A TCP chain: network RBAC filters and Istio's stats, then the tcp_proxy that ends it.
            var rbac = new List<Filters.Network.Rbac.NetworkRbacConfig>();
            Telemetry.IstioStatsConfig? istioStats = null;
            foreach (var filter in chain.Filters.Take(chain.Filters.Count - 1))
            {
                var fwhere = where + " filter " + filter.Name;
                XdsFields.Check(filter, fwhere, "name", "typed_config");
                var type = filter.TypedConfig is { } typed ? TypedStructs.TypeUrlOf(typed) : null;
                if (type == Telemetry.IstioStatsConfig.TypeUrl)
                {
                    istioStats = Telemetry.IstioStatsConfig.Compile(filter.TypedConfig!, metrics, local, direction, fwhere);
                    continue;
                }
                if (type != Filters.Network.Rbac.NetworkRbacConfig.TypeUrl)
                {
                    throw new ProxyConfigException($"{fwhere}: network filter {type ?? "(no typed_config)"} is not supported before tcp_proxy; supported: {Filters.Network.Rbac.NetworkRbacConfig.TypeUrl}, {Telemetry.IstioStatsConfig.TypeUrl}");
                }
                rbac.Add(Filters.Network.Rbac.NetworkRbacConfig.Compile(filter.TypedConfig, stats, fwhere));
            }
            XdsFields.Check(chain.Filters[^1], where + " filter " + chain.Filters[^1].Name, "name", "typed_config");
            return new CompiledFilterChain(chain.Name, null, tls, Filters.Network.TcpProxy.TcpProxyConfig.Compile(chain.Filters[^1].TypedConfig, clusters, TcpStatsFor, random, accessLogs, time, where, istioStats)) { NetworkRbac = rbac };
        }
        return new CompiledFilterChain(chain.Name, CompileHttp(chain, where, rds, inline, direction), tls);
    }

    private readonly Dictionary<string, Filters.Network.TcpProxy.TcpProxyStats> _tcpStats = new(StringComparer.Ordinal);

    private Filters.Network.TcpProxy.TcpProxyStats TcpStatsFor(string prefix)
    {
        if (!_tcpStats.TryGetValue(prefix, out var tcpStats))
        {
            tcpStats = _tcpStats[prefix] = new Filters.Network.TcpProxy.TcpProxyStats(stats, prefix);
        }
        return tcpStats;
    }

    private HttpChain CompileHttp(FilterChain chain, string where, Func<string, RouteTable?> rds, Func<RouteConfiguration, RouteTable> inline, Envoy.Config.Core.V3.TrafficDirection direction)
    {
        if (chain.Filters.Count != 1 || chain.Filters[0].TypedConfig?.TypeUrl != ResourceReferences.HttpConnectionManagerTypeUrl)
        {
            var names = string.Join(", ", chain.Filters.Select(f => f.TypedConfig?.TypeUrl ?? f.Name));
            throw new ProxyConfigException($"{where}: filters [{names}] are not supported; a chain must be exactly one envoy.filters.network.http_connection_manager or one envoy.filters.network.tcp_proxy");
        }
        var hcm = chain.Filters[0].TypedConfig.Unpack<HttpConnectionManager>();
        XdsFields.Check(hcm, where + " http_connection_manager", "stat_prefix", "rds", "route_config", "http_filters", "upgrade_configs", "generate_request_id",
            "normalize_path", "merge_slashes", "path_with_escaped_slashes_action", "forward_client_cert_details", "set_current_client_cert_details", "access_log",
            "tracing", "internal_address_config", "request_id_extension");
        var filters = CompileFilters(hcm, where, direction);

        RouteTable? table;
        string? rdsName = null;
        switch (hcm.RouteSpecifierCase)
        {
            case HttpConnectionManager.RouteSpecifierOneofCase.Rds:
                XdsFields.Check(hcm.Rds, where + " rds", "config_source", "route_config_name");
                rdsName = hcm.Rds.RouteConfigName;
                table = rds(rdsName);
                break;
            case HttpConnectionManager.RouteSpecifierOneofCase.RouteConfig:
                table = inline(hcm.RouteConfig);
                break;
            default:
                throw new ProxyConfigException($"{where}: route_specifier {hcm.RouteSpecifierCase} is not supported; use rds or route_config");
        }
        foreach (var upgrade in hcm.UpgradeConfigs)
        {
            XdsFields.Check(upgrade, where + " upgrade_configs", "upgrade_type", "enabled");
            if (!string.Equals(upgrade.UpgradeType, "websocket", StringComparison.OrdinalIgnoreCase))
            {
                throw new ProxyConfigException($"{where}: upgrade type {upgrade.UpgradeType} is not supported; only websocket");
            }
        }
        var websocket = hcm.UpgradeConfigs.Any(u => string.Equals(u.UpgradeType, "websocket", StringComparison.OrdinalIgnoreCase) && u.Enabled is null or true);
        return new HttpChain(hcm.StatPrefix, rdsName, table, filters, websocket, generateRequestId: hcm.GenerateRequestId is null or true, ChainStats(hcm.StatPrefix), Paths(hcm, where), ClientCerts(hcm, where))
        {
            AccessLogs = [.. hcm.AccessLog.Select(log => AccessLogs.AccessLogger.Compile(log, accessLogs, where))],
            Tracing = Tracing.HttpTracing.Compile(hcm, spanSinks, stats, random, direction, where),
        };
    }

    private static Http.ClientCertForwarding ClientCerts(HttpConnectionManager hcm, string where)
    {
        var mode = hcm.ForwardClientCertDetails switch
        {
            HttpConnectionManager.Types.ForwardClientCertDetails.Sanitize => Http.ClientCertMode.Sanitize,
            HttpConnectionManager.Types.ForwardClientCertDetails.ForwardOnly => Http.ClientCertMode.ForwardOnly,
            HttpConnectionManager.Types.ForwardClientCertDetails.AppendForward => Http.ClientCertMode.AppendForward,
            HttpConnectionManager.Types.ForwardClientCertDetails.SanitizeSet => Http.ClientCertMode.SanitizeSet,
            HttpConnectionManager.Types.ForwardClientCertDetails.AlwaysForwardOnly => Http.ClientCertMode.AlwaysForwardOnly,
            _ => throw new ProxyConfigException($"{where}: forward_client_cert_details {hcm.ForwardClientCertDetails} is not supported"),
        };
        var set = hcm.SetCurrentClientCertDetails;
        if (set is not null)
        {
            XdsFields.Check(set, where + " set_current_client_cert_details", "subject", "cert", "chain", "dns", "uri");
            if (set.Chain)
            {
                throw new ProxyConfigException($"{where}: set_current_client_cert_details.chain is not supported (the peer's chain is not kept past the handshake); use cert");
            }
        }
        var forwarding = new Http.ClientCertForwarding(mode, set?.Subject ?? false, set?.Cert ?? false, false, set?.Dns ?? false, set?.Uri ?? false);
        return forwarding == Http.ClientCertForwarding.Default ? Http.ClientCertForwarding.Default : forwarding;
    }

    private static Http.PathNormalization Paths(HttpConnectionManager hcm, string where)
    {
        var escaped = hcm.PathWithEscapedSlashesAction switch
        {
            HttpConnectionManager.Types.PathWithEscapedSlashesAction.ImplementationSpecificDefault or HttpConnectionManager.Types.PathWithEscapedSlashesAction.KeepUnchanged => Http.EscapedSlashes.Keep,
            HttpConnectionManager.Types.PathWithEscapedSlashesAction.RejectRequest => Http.EscapedSlashes.Reject,
            HttpConnectionManager.Types.PathWithEscapedSlashesAction.UnescapeAndForward => Http.EscapedSlashes.UnescapeAndForward,
            HttpConnectionManager.Types.PathWithEscapedSlashesAction.UnescapeAndRedirect => Http.EscapedSlashes.UnescapeAndRedirect,
            _ => throw new ProxyConfigException($"{where}: path_with_escaped_slashes_action {hcm.PathWithEscapedSlashesAction} is not supported"),
        };
        var paths = new Http.PathNormalization(hcm.NormalizePath ?? false, hcm.MergeSlashes, escaped);
        return paths == Http.PathNormalization.Default ? Http.PathNormalization.Default : paths;
    }

    private HttpFilterEntry[] CompileFilters(HttpConnectionManager hcm, string where, Envoy.Config.Core.V3.TrafficDirection direction)
    {
        var context = new FilterFactoryContext(stats, time, random, loggers, hcm.StatPrefix, direction);
        var entries = new List<HttpFilterEntry>();
        // Names may repeat (Istio sends a DENY and an ALLOW envoy.filters.http.rbac); a route's typed_per_filter_config
        // under a name applies to each filter of that name, as in Envoy.
        foreach (var filter in hcm.HttpFilters)
        {
            var fwhere = $"{where} http filter {filter.Name}";
            XdsFields.Check(filter, fwhere, "name", "typed_config", "is_optional", "disabled");
            var factory = filter.TypedConfig is { } typed ? catalog.ForConfig(TypedStructs.TypeUrlOf(typed)) : null;
            if (factory is null)
            {
                if (filter.IsOptional)
                {
                    continue;
                }
                throw new ProxyConfigException($"{fwhere}: filter type {filter.TypedConfig?.TypeUrl ?? "(no typed_config)"} is not supported; supported: {string.Join(", ", catalog.ConfigTypes)}; mark it is_optional to run without it");
            }
            entries.Add(new HttpFilterEntry(factory.Create(filter.Name, filter.TypedConfig!, context, fwhere), filter.Disabled));
        }
        if (entries.Count == 0 || hcm.HttpFilters[^1].TypedConfig?.TypeUrl != HttpFilterCatalog.RouterTypeUrl)
        {
            throw new ProxyConfigException($"{where}: the last http filter must be envoy.filters.http.router");
        }
        if (entries.Take(entries.Count - 1).Any(e => e.Filter is Filters.Http.Router.RouterFilter))
        {
            throw new ProxyConfigException($"{where}: envoy.filters.http.router must be the last http filter, and appear once");
        }
        return [.. entries];
    }

    private HttpChainStats ChainStats(string prefix)
    {
        if (!_chainStats.TryGetValue(prefix, out var chainStats))
        {
            chainStats = _chainStats[prefix] = new HttpChainStats(stats, prefix);
        }
        return chainStats;
    }

    private static IPEndPoint Endpoint(Envoy.Config.Core.V3.Address? address, string where)
    {
        var socket = address?.SocketAddress ?? throw new ProxyConfigException($"{where}: address must be a socket_address");
        XdsFields.Check(socket, where + " socket_address", "address", "port_value", "protocol");
        if (!IPAddress.TryParse(socket.Address, out var ip))
        {
            throw new ProxyConfigException($"{where}: '{socket.Address}' is not an IP address");
        }
        if (socket.PortValue > 65535)
        {
            throw new ProxyConfigException($"{where}: port {socket.PortValue} is not a TCP port");
        }
        return new IPEndPoint(ip, (int)socket.PortValue);
    }
}
