using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Filter = Envoy.Config.Listener.V3.Filter;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Http.Router.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using UpstreamHttpProtocolOptions = Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>Envoy v3 resources shaped the way Bowline's (and Istio's) control plane sends them to a sidecar.</summary>
internal static class EnvoyResources
{
    public const string ReviewsCluster = "outbound|9080||reviews.default.svc.cluster.local";
    public const string RatingsCluster = "outbound|9080||ratings.default.svc.cluster.local";

    public static Address SocketAddress(string ip, int port) => new() { SocketAddress = new Envoy.Config.Core.V3.SocketAddress { Address = ip, PortValue = (uint)port } };

    /// <summary>A listener with one filter chain holding an HCM that takes its routes from RDS.</summary>
    public static Listener HttpListener(string name, int port, string routeConfigName, string ip = "127.0.0.1") =>
        Listener(name, port, ip, HttpConnectionManagerFilter(Hcm(name, routeConfigName)));

    public static Listener Listener(string name, int port, string ip, params Filter[] filters)
    {
        var chain = new FilterChain { Name = name + "-chain" };
        chain.Filters.AddRange(filters);
        return new Listener { Name = name, Address = SocketAddress(ip, port), FilterChains = { chain } };
    }

    public static HttpConnectionManager Hcm(string statPrefix, string routeConfigName, params HttpFilter[] filtersBeforeRouter)
    {
        var hcm = new HttpConnectionManager
        {
            StatPrefix = statPrefix,
            Rds = new Rds { RouteConfigName = routeConfigName, ConfigSource = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 } },
        };
        hcm.HttpFilters.AddRange(filtersBeforeRouter);
        hcm.HttpFilters.Add(RouterFilter());
        return hcm;
    }

    public static Filter HttpConnectionManagerFilter(HttpConnectionManager hcm) =>
        new() { Name = "envoy.filters.network.http_connection_manager", TypedConfig = Any.Pack(hcm) };

    public static HttpFilter RouterFilter() => new() { Name = "envoy.filters.http.router", TypedConfig = Any.Pack(new Router()) };

    /// <summary>An EDS cluster over ADS; <paramref name="http2"/> adds the HttpProtocolOptions Istio sends for gRPC and h2 ports.</summary>
    public static Cluster EdsCluster(string name, bool http2 = false, string? serviceName = null, Cluster.Types.LbPolicy policy = Cluster.Types.LbPolicy.RoundRobin)
    {
        var cluster = new Cluster
        {
            Name = name,
            Type = Cluster.Types.DiscoveryType.Eds,
            LbPolicy = policy,
            ConnectTimeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(10)),
            EdsClusterConfig = new Cluster.Types.EdsClusterConfig { EdsConfig = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 }, ServiceName = serviceName ?? "" },
        };
        if (http2)
        {
            var options = new UpstreamHttpProtocolOptions
            {
                ExplicitHttpConfig = new UpstreamHttpProtocolOptions.Types.ExplicitHttpConfig { Http2ProtocolOptions = new Http2ProtocolOptions() },
            };
            cluster.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"] = Any.Pack(options);
        }
        return cluster;
    }

    /// <summary>Endpoints of one cluster in one locality; each is (ip, port, weight).</summary>
    public static ClusterLoadAssignment Endpoints(string cluster, params (string Ip, int Port, uint Weight)[] endpoints)
    {
        var locality = new LocalityLbEndpoints();
        foreach (var (ip, port, weight) in endpoints)
        {
            locality.LbEndpoints.Add(new LbEndpoint
            {
                Endpoint = new Endpoint { Address = SocketAddress(ip, port) },
                LoadBalancingWeight = weight,
                HealthStatus = HealthStatus.Healthy,
            });
        }
        return new ClusterLoadAssignment { ClusterName = cluster, Endpoints = { locality } };
    }

    public static RouteConfiguration RouteConfig(string name, params VirtualHost[] hosts)
    {
        var config = new RouteConfiguration { Name = name };
        config.VirtualHosts.AddRange(hosts);
        return config;
    }

    public static VirtualHost VirtualHost(string name, IEnumerable<string> domains, params Route[] routes)
    {
        var host = new VirtualHost { Name = name };
        host.Domains.AddRange(domains);
        host.Routes.AddRange(routes);
        return host;
    }

    public static Route ClusterRoute(string name, RouteMatch match, string cluster) =>
        new() { Name = name, Match = match, Route_ = new RouteAction { Cluster = cluster } };

    public static Route WeightedRoute(string name, RouteMatch match, params (string Cluster, uint Weight)[] clusters)
    {
        var weighted = new WeightedCluster();
        foreach (var (cluster, weight) in clusters)
        {
            weighted.Clusters.Add(new WeightedCluster.Types.ClusterWeight { Name = cluster, Weight = weight });
        }
        return new Route { Name = name, Match = match, Route_ = new RouteAction { WeightedClusters = weighted } };
    }

    public static RouteMatch Prefix(string prefix) => new() { Prefix = prefix };
}
