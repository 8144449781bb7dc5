using System.Net;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.Upstreams.Http.V3;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// Turns accepted xDS resources into a <see cref="ProxySnapshot"/>: the build-time half of "build-time factory,
/// run-time object". Every unsupported or invalid field throws <see cref="ProxyConfigException"/> naming the resource
/// and field, which the xDS client sends back as a NACK; nothing is silently ignored.
/// </summary>
internal sealed class ProxyConfigCompiler(ConnectionPools pools, ProxyStats stats)
{
    private const string HttpConnectionManagerType = ResourceReferences.HttpConnectionManagerTypeUrl;
    private const string RouterType = ResourceReferences.RouterTypeUrl;
    private const string HttpProtocolOptionsKey = ResourceReferences.HttpProtocolOptionsKey;

    /// <summary>The longest timer .NET supports; a longer route or connect timeout means "effectively none".</summary>
    private static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    // Stats objects by name; like the stats themselves they live as long as the proxy. Used by the xDS loop only.
    private readonly Dictionary<string, ClusterStats> _clusterStats = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HttpChainStats> _chainStats = new(StringComparer.Ordinal);

    public ProxySnapshot Compile(long version, IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> accepted, IReadOnlyDictionary<string, string> versionInfo)
    {
        var endpoints = Of(accepted, TypeUrls.ClusterLoadAssignment);
        var clusters = new Dictionary<string, UpstreamCluster>(StringComparer.Ordinal);
        var liveEndpoints = new HashSet<(string, string, int)>();
        foreach (var resource in Of(accepted, TypeUrls.Cluster).Values)
        {
            var cluster = CompileCluster((Cluster)resource.Resource, endpoints);
            clusters[cluster.Name] = cluster;
            foreach (var endpoint in cluster.Endpoints)
            {
                liveEndpoints.Add((cluster.Name, endpoint.Endpoint.Address, endpoint.Endpoint.Port));
            }
        }

        var routes = Of(accepted, TypeUrls.RouteConfiguration);
        var routeTables = new Dictionary<string, RouteTable>(StringComparer.Ordinal);
        var listeners = new Dictionary<string, CompiledListener>(StringComparer.Ordinal);
        foreach (var resource in Of(accepted, TypeUrls.Listener).Values)
        {
            listeners[resource.Name] = CompileListener((Listener)resource.Resource, routes, routeTables, clusters);
        }
        var bound = new Dictionary<string, string>();
        foreach (var listener in listeners.Values)
        {
            foreach (var address in listener.Addresses)
            {
                if (!bound.TryAdd(address.ToString(), listener.Name))
                {
                    throw new ProxyConfigException($"listener {listener.Name}: address {address} is already used by listener {bound[address.ToString()]}");
                }
            }
        }

        pools.Prune(clusters.Keys.ToHashSet(StringComparer.Ordinal), liveEndpoints);
        return new ProxySnapshot(version, listeners, clusters, accepted, versionInfo);
    }

    private UpstreamCluster CompileCluster(Cluster cluster, IReadOnlyDictionary<string, AcceptedResource> assignments)
    {
        var where = $"cluster {cluster.Name}";
        if (cluster.TransportSocket is not null)
        {
            throw new ProxyConfigException($"{where}: transport_socket (upstream TLS) is not supported yet");
        }
        ClusterLoadAssignment? assignment = cluster.Type switch
        {
            Cluster.Types.DiscoveryType.Eds => assignments.GetValueOrDefault(ResourceReferences.EndpointsName(cluster)!)?.Resource as ClusterLoadAssignment,
            Cluster.Types.DiscoveryType.Static => cluster.LoadAssignment,
            _ => throw new ProxyConfigException($"{where}: type {cluster.Type} is not supported; use EDS or STATIC"),
        };
        if (cluster.Type == Cluster.Types.DiscoveryType.Eds && cluster.EdsClusterConfig?.EdsConfig is { } source && source.ConfigSourceSpecifierCase is not (Envoy.Config.Core.V3.ConfigSource.ConfigSourceSpecifierOneofCase.Ads or Envoy.Config.Core.V3.ConfigSource.ConfigSourceSpecifierOneofCase.Self))
        {
            throw new ProxyConfigException($"{where}: eds_cluster_config.eds_config must be ads or self; Bowline fetches endpoints over ADS");
        }

        var protocol = UpstreamProtocol.Http1;
        if (cluster.TypedExtensionProtocolOptions.TryGetValue(HttpProtocolOptionsKey, out var packed))
        {
            if (!packed.TryUnpack<HttpProtocolOptions>(out var options))
            {
                throw new ProxyConfigException($"{where}: typed_extension_protocol_options[{HttpProtocolOptionsKey}] is a {packed.TypeUrl}, not HttpProtocolOptions");
            }
            protocol = options.UpstreamProtocolOptionsCase switch
            {
                HttpProtocolOptions.UpstreamProtocolOptionsOneofCase.ExplicitHttpConfig when options.ExplicitHttpConfig.Http2ProtocolOptions is not null => UpstreamProtocol.Http2,
                HttpProtocolOptions.UpstreamProtocolOptionsOneofCase.UseDownstreamProtocolConfig => UpstreamProtocol.Downstream,
                _ => UpstreamProtocol.Http1,
            };
        }

        var endpoints = new List<WeightedEndpoint>();
        foreach (var locality in assignment?.Endpoints ?? [])
        {
            foreach (var lbEndpoint in locality.LbEndpoints)
            {
                var socket = lbEndpoint.Endpoint?.Address?.SocketAddress
                    ?? throw new ProxyConfigException($"{where}: an endpoint has no socket_address");
                if (!IPAddress.TryParse(socket.Address, out _))
                {
                    throw new ProxyConfigException($"{where}: endpoint address '{socket.Address}' is not an IP address");
                }
                if (socket.PortValue is 0 or > 65535)
                {
                    throw new ProxyConfigException($"{where}: endpoint port {socket.PortValue} is not a TCP port");
                }
                var healthy = lbEndpoint.HealthStatus is Envoy.Config.Core.V3.HealthStatus.Unknown or Envoy.Config.Core.V3.HealthStatus.Healthy or Envoy.Config.Core.V3.HealthStatus.Degraded;
                var weight = (int)Math.Max(1u, lbEndpoint.LoadBalancingWeight ?? 1u);
                endpoints.Add(new WeightedEndpoint(pools.Endpoint(cluster.Name, socket.Address, (int)socket.PortValue), weight, healthy));
            }
        }

        var connectTimeout = cluster.ConnectTimeout?.ToTimeSpan() is { Ticks: > 0 } t ? (t > MaxTimer ? Timeout.InfiniteTimeSpan : t) : TimeSpan.FromSeconds(5);
        // Kept across updates: stat lookups are done once per cluster, and the failure-log rate limit survives pushes.
        if (!_clusterStats.TryGetValue(cluster.Name, out var clusterStats))
        {
            clusterStats = _clusterStats[cluster.Name] = new ClusterStats(stats, cluster.Name);
        }
        clusterStats.MembershipTotal.Set(endpoints.Count);
        clusterStats.MembershipHealthy.Set(endpoints.Count(e => e.Healthy));
        return new UpstreamCluster(cluster.Name, protocol, pools.Balancer(cluster.Name, cluster.LbPolicy), endpoints, pools.Invoker(cluster.Name, protocol, connectTimeout), clusterStats);
    }

    private CompiledListener CompileListener(Listener listener, IReadOnlyDictionary<string, AcceptedResource> routes, Dictionary<string, RouteTable> routeTables, IReadOnlyDictionary<string, UpstreamCluster> clusters)
    {
        var where = $"listener {listener.Name}";
        if (listener.ApiListener is not null)
        {
            throw new ProxyConfigException($"{where}: api_listener is for proxyless gRPC clients; a Bowline proxy needs socket listeners");
        }
        var addresses = new List<IPEndPoint> { Endpoint(listener.Address, where) };
        addresses.AddRange(listener.AdditionalAddresses.Select(a => Endpoint(a.Address, where + " additional_addresses")));

        var byPort = new Dictionary<int, HttpChain>();
        HttpChain? defaultChain = null;
        foreach (var chain in listener.FilterChains)
        {
            var compiled = CompileChain(chain, $"{where} filter chain {chain.Name}", routes, routeTables, clusters);
            if (chain.FilterChainMatch is { } match)
            {
                if (match.ServerNames.Count > 0 || match.TransportProtocol.Length > 0 || match.ApplicationProtocols.Count > 0 || match.PrefixRanges.Count > 0 || match.SourcePrefixRanges.Count > 0)
                {
                    throw new ProxyConfigException($"{where} filter chain {chain.Name}: filter_chain_match supports destination_port only for now");
                }
                if (match.DestinationPort is { } port)
                {
                    byPort[(int)port] = compiled;
                    continue;
                }
            }
            defaultChain = defaultChain is null ? compiled : throw new ProxyConfigException($"{where}: more than one filter chain matches every connection");
        }
        if (listener.DefaultFilterChain is { } fallback)
        {
            defaultChain ??= CompileChain(fallback, $"{where} default_filter_chain", routes, routeTables, clusters);
        }
        if (byPort.Count == 0 && defaultChain is null)
        {
            throw new ProxyConfigException($"{where}: no filter chains");
        }
        return new CompiledListener(listener.Name, addresses, byPort, defaultChain);
    }

    private HttpChain CompileChain(FilterChain chain, string where, IReadOnlyDictionary<string, AcceptedResource> routes, Dictionary<string, RouteTable> routeTables, IReadOnlyDictionary<string, UpstreamCluster> clusters)
    {
        if (chain.TransportSocket is not null)
        {
            throw new ProxyConfigException($"{where}: transport_socket (downstream TLS) is not supported yet");
        }
        if (chain.Filters.Count != 1 || chain.Filters[0].TypedConfig?.TypeUrl != HttpConnectionManagerType)
        {
            var names = string.Join(", ", chain.Filters.Select(f => f.TypedConfig?.TypeUrl ?? f.Name));
            throw new ProxyConfigException($"{where}: filters [{names}] are not supported yet; a chain must be exactly one envoy.filters.network.http_connection_manager");
        }
        var hcm = chain.Filters[0].TypedConfig.Unpack<HttpConnectionManager>();
        foreach (var filter in hcm.HttpFilters)
        {
            if (filter.TypedConfig?.TypeUrl != RouterType && !filter.IsOptional)
            {
                throw new ProxyConfigException($"{where}: http filter {filter.Name} ({filter.TypedConfig?.TypeUrl}) is not supported yet");
            }
        }
        if (hcm.HttpFilters.Count == 0 || hcm.HttpFilters[^1].TypedConfig?.TypeUrl != RouterType)
        {
            throw new ProxyConfigException($"{where}: the last http filter must be envoy.filters.http.router");
        }

        RouteTable? table;
        string? rdsName = null;
        switch (hcm.RouteSpecifierCase)
        {
            case HttpConnectionManager.RouteSpecifierOneofCase.Rds:
                rdsName = hcm.Rds.RouteConfigName;
                table = routeTables.GetValueOrDefault(rdsName);
                if (table is null && routes.TryGetValue(rdsName, out var rds))
                {
                    table = routeTables[rdsName] = CompileRoutes((RouteConfiguration)rds.Resource, clusters);
                }
                break;
            case HttpConnectionManager.RouteSpecifierOneofCase.RouteConfig:
                table = CompileRoutes(hcm.RouteConfig, clusters);
                break;
            default:
                throw new ProxyConfigException($"{where}: route_specifier {hcm.RouteSpecifierCase} is not supported; use rds or route_config");
        }
        var websocket = hcm.UpgradeConfigs.Any(u => string.Equals(u.UpgradeType, "websocket", StringComparison.OrdinalIgnoreCase) && u.Enabled is null or true);
        return new HttpChain(hcm.StatPrefix, rdsName, table, websocket, generateRequestId: hcm.GenerateRequestId is null or true, ChainStats(hcm.StatPrefix));
    }

    private HttpChainStats ChainStats(string prefix)
    {
        if (!_chainStats.TryGetValue(prefix, out var chainStats))
        {
            chainStats = _chainStats[prefix] = new HttpChainStats(stats, prefix);
        }
        return chainStats;
    }

    private RouteTable CompileRoutes(RouteConfiguration config, IReadOnlyDictionary<string, UpstreamCluster> clusters)
    {
        var hosts = new List<(IReadOnlyList<string>, VirtualHostEntry)>();
        foreach (var vhost in config.VirtualHosts)
        {
            var where = $"route configuration {config.Name} virtual host {vhost.Name}";
            var entries = vhost.Routes.Select((route, i) => CompileRoute(route, $"{where} route {(route.Name.Length > 0 ? route.Name : i.ToString(System.Globalization.CultureInfo.InvariantCulture))}", clusters)).ToArray();
            hosts.Add((vhost.Domains.ToList(), new VirtualHostEntry(vhost.Name, entries)));
        }
        return new RouteTable(config.Name, hosts);
    }

    private static RouteEntry CompileRoute(Route route, string where, IReadOnlyDictionary<string, UpstreamCluster> clusters)
    {
        var match = route.Match ?? throw new ProxyConfigException($"{where}: match is required");
        string? exact = null, prefix = null;
        System.Text.RegularExpressions.Regex? regex = null;
        switch (match.PathSpecifierCase)
        {
            case RouteMatch.PathSpecifierOneofCase.Prefix:
                prefix = match.Prefix;
                break;
            case RouteMatch.PathSpecifierOneofCase.Path:
                exact = match.Path;
                break;
            case RouteMatch.PathSpecifierOneofCase.SafeRegex:
                regex = StringMatcher.CompileRegex(match.SafeRegex.Regex, where + " match.safe_regex");
                break;
            default:
                throw new ProxyConfigException($"{where}: match.{match.PathSpecifierCase} is not supported; use prefix, path or safe_regex");
        }
        if (match.CaseSensitive == false || match.QueryParameters.Count > 0 || match.RuntimeFraction is not null || match.Grpc is not null)
        {
            throw new ProxyConfigException($"{where}: case_sensitive, query_parameters, runtime_fraction and grpc matches are not supported yet");
        }
        if (match.Headers.Any(h => h.TreatMissingHeaderAsEmpty))
        {
            throw new ProxyConfigException($"{where}: headers[].treat_missing_header_as_empty is not supported yet");
        }
        var headers = match.Headers.Select(h => new HeaderCondition(
            h.Name.ToLowerInvariant(),
            h.HeaderMatchSpecifierCase switch
            {
                HeaderMatcher.HeaderMatchSpecifierOneofCase.StringMatch => StringMatcher.From(h.StringMatch, $"{where} header {h.Name}"),
                HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch => null,
                _ => throw new ProxyConfigException($"{where}: header {h.Name} match {h.HeaderMatchSpecifierCase} is not supported"),
            },
            h.HeaderMatchSpecifierCase == HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch,
            h.InvertMatch != (h.HeaderMatchSpecifierCase == HeaderMatcher.HeaderMatchSpecifierOneofCase.PresentMatch && !h.PresentMatch))).ToArray();

        if (route.ActionCase != Route.ActionOneofCase.Route_)
        {
            throw new ProxyConfigException($"{where}: action {route.ActionCase} is not supported yet; use route");
        }
        var action = route.Route_;
        var targets = new List<WeightedTarget>();
        switch (action.ClusterSpecifierCase)
        {
            case RouteAction.ClusterSpecifierOneofCase.Cluster:
                targets.Add(new WeightedTarget(action.Cluster, clusters.GetValueOrDefault(action.Cluster), 1));
                break;
            case RouteAction.ClusterSpecifierOneofCase.WeightedClusters:
                var cumulative = 0;
                if (action.WeightedClusters.Clusters.Sum(c => (long)(c.Weight ?? 0)) > int.MaxValue)
                {
                    throw new ProxyConfigException($"{where}: weighted_clusters weights sum past {int.MaxValue}");
                }
                foreach (var weighted in action.WeightedClusters.Clusters)
                {
                    var weight = (int)(weighted.Weight ?? 0);
                    if (weight == 0)
                    {
                        continue;
                    }
                    cumulative += weight;
                    targets.Add(new WeightedTarget(weighted.Name, clusters.GetValueOrDefault(weighted.Name), cumulative));
                }
                if (targets.Count == 0)
                {
                    throw new ProxyConfigException($"{where}: weighted_clusters has no cluster with a weight above 0");
                }
                break;
            default:
                throw new ProxyConfigException($"{where}: cluster specifier {action.ClusterSpecifierCase} is not supported; use cluster or weighted_clusters");
        }
        // Envoy's default route timeout is 15 s; zero disables it, and so does one longer than a timer can run.
        var timeout = action.Timeout is null ? TimeSpan.FromSeconds(15) : action.Timeout.ToTimeSpan();
        return new RouteEntry(route.Name, exact, prefix, regex, headers, [.. targets], timeout > TimeSpan.Zero && timeout <= MaxTimer ? timeout : null);
    }

    private static IPEndPoint Endpoint(Envoy.Config.Core.V3.Address? address, string where)
    {
        var socket = address?.SocketAddress ?? throw new ProxyConfigException($"{where}: address must be a socket_address");
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

    private static IReadOnlyDictionary<string, AcceptedResource> Of(IReadOnlyDictionary<string, IReadOnlyDictionary<string, AcceptedResource>> accepted, string type) =>
        accepted.TryGetValue(type, out var resources) ? resources : new Dictionary<string, AcceptedResource>();
}
