using System.Net;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Clusters.Outlier;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Extensions.Upstreams.Http.V3;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// Compiles CDS and EDS resources into staged cluster updates. A cluster whose Cluster resource is unchanged keeps
/// its compiled config; one whose assignment is unchanged keeps its host set; one with neither changed is not
/// touched at all, so an EDS-only push rebuilds only the host sets it changes.
/// </summary>
internal sealed class ClusterCompiler(ConnectionPools pools, ClusterManager clusters)
{
    private const string HttpProtocolOptionsKey = ResourceReferences.HttpProtocolOptionsKey;

    /// <summary>The longest timer .NET supports; a longer timeout means "effectively none".</summary>
    internal static readonly TimeSpan MaxTimer = TimeSpan.FromMilliseconds(uint.MaxValue - 1);

    /// <summary>Stages every cluster of the candidate; returns the live endpoints (for pool pruning).</summary>
    public HashSet<(string, string, int)> Stage(IReadOnlyDictionary<string, AcceptedResource> cds, IReadOnlyDictionary<string, AcceptedResource> eds)
    {
        var liveEndpoints = new HashSet<(string, string, int)>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var resource in cds.Values)
        {
            var cluster = (Cluster)resource.Resource;
            names.Add(cluster.Name);
            var current = clusters.Handle(cluster.Name).Current;
            var config = current is not null && current.Config.Source.Equals(cluster) ? current.Config : CompileConfig(cluster);
            var assignment = cluster.Type == Cluster.Types.DiscoveryType.Eds
                ? eds.GetValueOrDefault(ResourceReferences.EndpointsName(cluster)!)?.Resource as ClusterLoadAssignment
                : cluster.LoadAssignment;
            HostSet hosts;
            if (config.Dns is not null)
            {
                // A DNS cluster's hosts come from its resolver; an unchanged target list keeps what was resolved.
                hosts = current is not null && current.Config.Dns is { } dns && dns.Equals(config.Dns)
                    ? new HostSet(null, current.Hosts.All, config.HostPolicy)
                    : HostSet.Empty;
                if (!ReferenceEquals(config, current?.Config))
                {
                    clusters.Stage(cluster.Name, config, hosts);
                }
                continue;
            }
            if (current is not null && ReferenceEquals(config, current.Config) && SameAssignment(current.Hosts.Source, assignment))
            {
                hosts = current.Hosts;
                foreach (var host in hosts.All)
                {
                    liveEndpoints.Add((cluster.Name, host.Endpoint.Address, host.Endpoint.Port));
                }
                continue;
            }
            var endpoints = CompileEndpoints(cluster.Name, assignment, config.Transport, $"cluster {cluster.Name}");
            foreach (var host in endpoints)
            {
                liveEndpoints.Add((cluster.Name, host.Endpoint.Address, host.Endpoint.Port));
            }
            hosts = new HostSet(assignment, endpoints, config.HostPolicy);
            clusters.Stage(cluster.Name, config, hosts);
        }
        clusters.StageLiveSet(names);
        return liveEndpoints;
    }

    private static bool SameAssignment(ClusterLoadAssignment? a, ClusterLoadAssignment? b) => ReferenceEquals(a, b) || (a is not null && a.Equals(b));

    private ClusterConfig CompileConfig(Cluster cluster)
    {
        var where = $"cluster {cluster.Name}";
        XdsFields.Check(cluster, where, "name", "type", "eds_cluster_config", "connect_timeout", "lb_policy", "load_assignment", "typed_extension_protocol_options",
            "circuit_breakers", "outlier_detection", "common_lb_config", "ring_hash_lb_config", "maglev_lb_config", "upstream_connection_options",
            "health_checks", "dns_lookup_family", "dns_refresh_rate", "round_robin_lb_config", "least_request_lb_config",
            "transport_socket", "transport_socket_matches", "metadata");
        if (cluster.Type is not (Cluster.Types.DiscoveryType.Eds or Cluster.Types.DiscoveryType.Static or Cluster.Types.DiscoveryType.StrictDns or Cluster.Types.DiscoveryType.LogicalDns))
        {
            throw new ProxyConfigException($"{where}: type {cluster.Type} is not supported; use EDS, STATIC, STRICT_DNS or LOGICAL_DNS");
        }
        var dns = cluster.Type is Cluster.Types.DiscoveryType.StrictDns or Cluster.Types.DiscoveryType.LogicalDns ? DnsSettingsOf(cluster, where) : null;
        if (cluster.Type == Cluster.Types.DiscoveryType.Eds && cluster.EdsClusterConfig is { } eds)
        {
            XdsFields.Check(eds, where + " eds_cluster_config", "eds_config", "service_name");
            if (eds.EdsConfig is { } source && source.ConfigSourceSpecifierCase is not (Envoy.Config.Core.V3.ConfigSource.ConfigSourceSpecifierOneofCase.Ads or Envoy.Config.Core.V3.ConfigSource.ConfigSourceSpecifierOneofCase.Self))
            {
                throw new ProxyConfigException($"{where}: eds_cluster_config.eds_config must be ads or self; Bowline fetches endpoints over ADS");
            }
        }

        var protocol = UpstreamProtocol.Http1;
        var maxRequestsPerConnection = 0;
        var (autoSni, autoSan) = (false, false);
        if (cluster.TypedExtensionProtocolOptions.Count > 0)
        {
            if (cluster.TypedExtensionProtocolOptions.Keys.FirstOrDefault(k => k != HttpProtocolOptionsKey) is { } other)
            {
                throw new ProxyConfigException($"{where}: typed_extension_protocol_options[{other}] is not supported; only {HttpProtocolOptionsKey}");
            }
            var packed = cluster.TypedExtensionProtocolOptions[HttpProtocolOptionsKey];
            if (!packed.TryUnpack<HttpProtocolOptions>(out var options))
            {
                throw new ProxyConfigException($"{where}: typed_extension_protocol_options[{HttpProtocolOptionsKey}] is a {packed.TypeUrl}, not HttpProtocolOptions");
            }
            XdsFields.Check(options, where + " HttpProtocolOptions", "explicit_http_config", "use_downstream_protocol_config", "common_http_protocol_options", "upstream_http_protocol_options");
            if (options.UpstreamHttpProtocolOptions is { } upstream)
            {
                XdsFields.Check(upstream, where + " upstream_http_protocol_options", "auto_sni", "auto_san_validation");
                (autoSni, autoSan) = (upstream.AutoSni, upstream.AutoSanValidation);
            }
            protocol = options.UpstreamProtocolOptionsCase switch
            {
                HttpProtocolOptions.UpstreamProtocolOptionsOneofCase.ExplicitHttpConfig when options.ExplicitHttpConfig.Http2ProtocolOptions is not null => UpstreamProtocol.Http2,
                HttpProtocolOptions.UpstreamProtocolOptionsOneofCase.UseDownstreamProtocolConfig => UpstreamProtocol.Downstream,
                _ => UpstreamProtocol.Http1,
            };
            if (options.ExplicitHttpConfig?.Http2ProtocolOptions is { } h2)
            {
                // SocketsHttpHandler follows the server's SETTINGS_MAX_CONCURRENT_STREAMS; a lower client cap is not expressible.
                XdsFields.Check(h2, where + " http2_protocol_options");
            }
            if (options.ExplicitHttpConfig?.HttpProtocolOptions is { } h1)
            {
                XdsFields.Check(h1, where + " http_protocol_options");
            }
            if (options.CommonHttpProtocolOptions is { } common)
            {
                XdsFields.Check(common, where + " common_http_protocol_options", "idle_timeout", "max_connection_duration", "max_requests_per_connection");
                maxRequestsPerConnection = (int)Math.Min(common.MaxRequestsPerConnection ?? 0, int.MaxValue);
            }
        }

        var limits = CircuitBreakerLimits.Default;
        if (cluster.CircuitBreakers is { } breakers)
        {
            XdsFields.Check(breakers, where + " circuit_breakers", "thresholds");
            foreach (var threshold in breakers.Thresholds)
            {
                XdsFields.Check(threshold, where + " circuit_breakers.thresholds", "priority", "max_connections", "max_pending_requests", "max_requests", "max_retries", "retry_budget", "track_remaining");
                if (threshold.Priority != Envoy.Config.Core.V3.RoutingPriority.Default)
                {
                    // Bowline has one priority: HIGH thresholds would never apply, which is safe to accept.
                    continue;
                }
                double? budget = null;
                var minRetries = 3;
                if (threshold.RetryBudget is { } rb)
                {
                    XdsFields.Check(rb, where + " retry_budget", "budget_percent", "min_retry_concurrency");
                    budget = rb.BudgetPercent?.Value ?? 20;
                    minRetries = (int)(rb.MinRetryConcurrency ?? 3);
                }
                limits = new CircuitBreakerLimits(Limit(threshold.MaxConnections), Limit(threshold.MaxPendingRequests), Limit(threshold.MaxRequests),
                    (int)Math.Min(threshold.MaxRetries ?? 3, int.MaxValue), budget, minRetries);
            }
        }

        OutlierDetectionConfig? outlier = cluster.OutlierDetection is { } od ? OutlierDetectionConfig.Compile(od, where + " outlier_detection") : null;
        var panic = 50;
        var localityWeighted = false;
        if (cluster.CommonLbConfig is { } lb)
        {
            XdsFields.Check(lb, where + " common_lb_config", "healthy_panic_threshold", "locality_weighted_lb_config");
            panic = (int)Math.Clamp(lb.HealthyPanicThreshold?.Value ?? 50, 0, 100);
            if (lb.LocalityWeightedLbConfig is { } weighted)
            {
                XdsFields.Check(weighted, where + " locality_weighted_lb_config");
                localityWeighted = true;
            }
        }
        var balancer = pools.Balancer(cluster);
        var policy = new HostSetPolicy(panic, balancer.RingKind, localityWeighted, SlowStartOf(cluster, where));
        var healthCheck = cluster.HealthChecks.Count > 0 ? Clusters.Health.HealthCheckConfig.Compile(cluster.HealthChecks, where) : null;
        var transport = Tls.UpstreamTransport.Compile(cluster, where, autoSni, autoSan);
        var settings = PoolSettingsOf(cluster, where) with
        {
            Tls = transport is not null,
            // Counted by the pool's connections above 1; 1 is the router's Connection: close. HTTP/2 is not limited.
            MaxRequestsPerConnection = maxRequestsPerConnection > 1 && protocol != UpstreamProtocol.Http2 ? maxRequestsPerConnection : 0,
        };
        return new ClusterConfig(cluster, protocol, pools.Invoker(cluster.Name, settings), balancer, limits, outlier, policy, dns, healthCheck, maxRequestsPerConnection, transport, settings);
    }

    /// <summary>Envoy's slow_start_config, which only ROUND_ROBIN and LEAST_REQUEST have (each in its own lb config).</summary>
    private SlowStart? SlowStartOf(Cluster cluster, string where)
    {
        Cluster.Types.SlowStartConfig? config = null;
        if (cluster.RoundRobinLbConfig is { } rr)
        {
            XdsFields.Check(rr, where + " round_robin_lb_config", "slow_start_config");
            config = rr.SlowStartConfig;
        }
        if (cluster.LeastRequestLbConfig is { } lr)
        {
            XdsFields.Check(lr, where + " least_request_lb_config", "slow_start_config");
            config = lr.SlowStartConfig;
        }
        if (config is null)
        {
            return null;
        }
        if ((cluster.RoundRobinLbConfig is not null && cluster.LbPolicy != Cluster.Types.LbPolicy.RoundRobin)
            || (cluster.LeastRequestLbConfig is not null && cluster.LbPolicy != Cluster.Types.LbPolicy.LeastRequest))
        {
            throw new ProxyConfigException($"{where}: slow_start_config is given for a policy other than lb_policy {cluster.LbPolicy}; put it in the lb config of the cluster's policy");
        }
        XdsFields.Check(config, where + " slow_start_config", "slow_start_window", "aggression", "min_weight_percent");
        var window = config.SlowStartWindow?.ToTimeSpan() ?? TimeSpan.Zero;
        if (window <= TimeSpan.Zero)
        {
            // Envoy: a zero window disables slow start.
            return null;
        }
        var aggression = config.Aggression?.DefaultValue ?? 1.0;
        if (aggression <= 0 || double.IsNaN(aggression))
        {
            throw new ProxyConfigException($"{where}: slow_start_config.aggression must be above 0; it is {aggression}");
        }
        var minWeight = (config.MinWeightPercent?.Value ?? 10) / 100;
        return new SlowStart(window, aggression, Math.Clamp(minWeight, 0.0, 1.0), pools.Time);
    }

    private static Clusters.Dns.DnsSettings DnsSettingsOf(Cluster cluster, string where)
    {
        var targets = new List<Clusters.Dns.DnsTarget>();
        foreach (var locality in cluster.LoadAssignment?.Endpoints ?? [])
        {
            XdsFields.Check(locality, where + " locality", "locality", "lb_endpoints", "load_balancing_weight", "priority");
            foreach (var lbEndpoint in locality.LbEndpoints)
            {
                XdsFields.Check(lbEndpoint, where + " endpoint", "endpoint", "health_status", "load_balancing_weight", "metadata");
                var socket = lbEndpoint.Endpoint?.Address?.SocketAddress ?? throw new ProxyConfigException($"{where}: a DNS endpoint has no socket_address");
                if (socket.Address.Length == 0 || socket.PortValue is 0 or > 65535)
                {
                    throw new ProxyConfigException($"{where}: DNS endpoint '{socket.Address}:{socket.PortValue}' needs a host name and a TCP port");
                }
                targets.Add(new Clusters.Dns.DnsTarget(socket.Address, (int)socket.PortValue, (int)Math.Max(1u, lbEndpoint.LoadBalancingWeight ?? 1u), (int)locality.Priority));
            }
        }
        if (targets.Count == 0)
        {
            throw new ProxyConfigException($"{where}: a {cluster.Type} cluster needs load_assignment endpoints with host names");
        }
        if (cluster.Type == Cluster.Types.DiscoveryType.LogicalDns && targets.Count != 1)
        {
            throw new ProxyConfigException($"{where}: a LOGICAL_DNS cluster resolves exactly one name; it has {targets.Count}");
        }
        System.Net.Sockets.AddressFamily? family = cluster.DnsLookupFamily switch
        {
            Cluster.Types.DnsLookupFamily.V4Only => System.Net.Sockets.AddressFamily.InterNetwork,
            Cluster.Types.DnsLookupFamily.V6Only => System.Net.Sockets.AddressFamily.InterNetworkV6,
            _ => null,
        };
        var refresh = cluster.DnsRefreshRate?.ToTimeSpan() is { } rate && rate >= TimeSpan.FromMilliseconds(1) ? rate : TimeSpan.FromSeconds(5);
        return new Clusters.Dns.DnsSettings(cluster.Type == Cluster.Types.DiscoveryType.LogicalDns, refresh, family, targets);
    }

    private static int Limit(uint? value) => value is { } v ? (int)Math.Min(v, int.MaxValue) : CircuitBreakerLimits.EnvoyDefault;

    private static PoolSettings PoolSettingsOf(Cluster cluster, string where)
    {
        var connectTimeout = cluster.ConnectTimeout?.ToTimeSpan() is { Ticks: > 0 } t ? (t > MaxTimer ? Timeout.InfiniteTimeSpan : t) : TimeSpan.FromSeconds(5);
        var maxConnections = int.MaxValue;
        foreach (var threshold in cluster.CircuitBreakers?.Thresholds ?? [])
        {
            if (threshold.Priority == Envoy.Config.Core.V3.RoutingPriority.Default && threshold.MaxConnections is { } mc)
            {
                maxConnections = (int)Math.Clamp(mc, 1, int.MaxValue);
            }
        }
        var idle = PoolSettings.DefaultIdleTimeout;
        var lifetime = Timeout.InfiniteTimeSpan;
        if (cluster.TypedExtensionProtocolOptions.TryGetValue(HttpProtocolOptionsKey, out var packed) && packed.TryUnpack<HttpProtocolOptions>(out var options)
            && options.CommonHttpProtocolOptions is { } common)
        {
            if (common.IdleTimeout?.ToTimeSpan() is { } configured)
            {
                // An explicit idle timeout is the operator's call (0 disables it, as in Envoy); without one the short
                // default keeps the proxy from reusing a connection the server is about to close.
                idle = configured > TimeSpan.Zero ? (configured > MaxTimer ? Timeout.InfiniteTimeSpan : configured) : Timeout.InfiniteTimeSpan;
            }
            if (common.MaxConnectionDuration?.ToTimeSpan() is { Ticks: > 0 } duration)
            {
                lifetime = duration;
            }
        }
        TcpKeepalive? keepalive = null;
        if (cluster.UpstreamConnectionOptions is { } connection)
        {
            XdsFields.Check(connection, where + " upstream_connection_options", "tcp_keepalive");
            if (connection.TcpKeepalive is { } ka)
            {
                keepalive = new TcpKeepalive((int)(ka.KeepaliveTime ?? 7200), (int)(ka.KeepaliveInterval ?? 75), (int)(ka.KeepaliveProbes ?? 9));
            }
        }
        return new PoolSettings(connectTimeout, maxConnections, idle, lifetime, keepalive);
    }

    private static readonly Dictionary<string, string> NoMetadata = [];

    /// <summary>An endpoint's <c>envoy.transport_socket_match</c> metadata (Istio's <c>tlsMode</c>), which picks its transport socket.</summary>
    private static IReadOnlyDictionary<string, string> TransportMatchOf(LbEndpoint endpoint, string where) =>
        endpoint.Metadata?.FilterMetadata.TryGetValue(Tls.UpstreamTransport.MetadataKey, out var fields) == true
            ? Tls.UpstreamTransport.Fields(fields, where + " endpoint metadata")
            : NoMetadata;

    /// <summary>Istio's endpoint telemetry label (<c>istio</c> / <c>workload</c>); a value of another shape names no workload.</summary>
    private static Telemetry.WorkloadMetadata? WorkloadOf(LbEndpoint endpoint) =>
        endpoint.Metadata?.FilterMetadata.TryGetValue(Bowline.Xds.CanonicalNames.EndpointMetadataKey, out var istio) == true
        && istio.Fields.TryGetValue(Bowline.Xds.CanonicalNames.EndpointWorkloadField, out var value) && value.KindCase == Google.Protobuf.WellKnownTypes.Value.KindOneofCase.StringValue
            ? Telemetry.WorkloadMetadata.FromEndpoint(value.StringValue)
            : null;

    private static string LocalityKey(Envoy.Config.Core.V3.Locality? locality) =>
        locality is null ? "" : $"{locality.Region}/{locality.Zone}/{locality.SubZone}";

    private List<WeightedEndpoint> CompileEndpoints(string cluster, ClusterLoadAssignment? assignment, Tls.UpstreamTransport? transport, string where)
    {
        var endpoints = new List<WeightedEndpoint>();
        if (assignment is null)
        {
            return endpoints;
        }
        XdsFields.Check(assignment, where + " load assignment", "cluster_name", "endpoints", "policy");
        if (assignment.Policy is { } policy)
        {
            // Istio sends overprovisioning_factor only; HostSet spills load between priorities with it.
            XdsFields.Check(policy, where + " load assignment policy", "overprovisioning_factor");
        }
        foreach (var locality in assignment.Endpoints)
        {
            XdsFields.Check(locality, where + " locality", "locality", "lb_endpoints", "load_balancing_weight", "priority");
            foreach (var lbEndpoint in locality.LbEndpoints)
            {
                XdsFields.Check(lbEndpoint, where + " endpoint", "endpoint", "health_status", "load_balancing_weight", "metadata");
                if (lbEndpoint.Endpoint is { } endpoint)
                {
                    XdsFields.Check(endpoint, where + " endpoint", "address");
                }
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
                var tls = transport?.For(TransportMatchOf(lbEndpoint, where));
                var host = pools.Endpoint(cluster, socket.Address, (int)socket.PortValue);
                // On the pooled endpoint, as its join time is; relabelled only when this update is accepted.
                pools.Label(host, WorkloadOf(lbEndpoint));
                endpoints.Add(new WeightedEndpoint(host, weight, healthy, (int)locality.Priority, LocalityKey(locality.Locality), (int)(locality.LoadBalancingWeight ?? 0), tls));
            }
        }
        return endpoints;
    }
}
