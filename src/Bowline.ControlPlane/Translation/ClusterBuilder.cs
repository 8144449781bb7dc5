using Bowline.ControlPlane.Registry;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Extensions.Upstreams.Http.V3;
using Google.Protobuf.WellKnownTypes;

using Bowline.ControlPlane.Snapshots;

namespace Bowline.ControlPlane.Translation;

/// <summary>Builds the outbound clusters (one per service port and subset) with their endpoints, and a sidecar's inbound clusters.</summary>
internal static class ClusterBuilder
{
    /// <summary>Istio's default connect timeout.</summary>
    private static readonly TimeSpan ConnectTimeout = TimeSpan.FromSeconds(10);

    public static void AddOutbound(ServiceIndex index, ProxyKind kind, SnapshotBuilder snapshot)
    {
        // An EDS cluster with an empty assignment, so that both our proxy and proxyless gRPC clients accept it.
        snapshot.AddCluster(Eds(IstioNames.BlackHoleCluster, kind, "ROUND_ROBIN", http2: false));
        snapshot.AddEndpoints(Assignment(IstioNames.BlackHoleCluster, []));

        foreach (var service in index.Services)
        {
            var rule = index.FindDestinationRule(service.Hostname);
            foreach (var port in service.Ports.Where(p => !p.IsHttp))
            {
                snapshot.Warn($"{service.Hostname} port {port.Number} ({port.Protocol}) is not served yet: Bowline proxies HTTP, HTTP/2 and gRPC ports only; TCP and TLS arrive later");
            }
            foreach (var port in service.Ports.Where(p => p.IsHttp))
            {
                Add(IstioNames.OutboundCluster(port.Number, null, service.Hostname), rule?.LoadBalancer, null);
                foreach (var subset in rule?.Subsets ?? [])
                {
                    Add(IstioNames.OutboundCluster(port.Number, subset.Name, service.Hostname), subset.LoadBalancer ?? rule!.LoadBalancer, subset.Labels);
                }

                void Add(string name, string? loadBalancer, IReadOnlyDictionary<string, string>? subsetLabels)
                {
                    snapshot.AddCluster(Eds(name, kind, loadBalancer, port.IsHttp2));
                    snapshot.AddEndpoints(Assignment(name, index.Endpoints(service, port, subsetLabels)));
                }
            }
        }
    }

    public static void AddInbound(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        foreach (var inbound in node.InboundPorts)
        {
            var cluster = new Cluster
            {
                Name = IstioNames.InboundCluster(inbound.ContainerPort),
                Type = Cluster.Types.DiscoveryType.Static,
                ConnectTimeout = Duration.FromTimeSpan(ConnectTimeout),
                LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
                LoadAssignment = Assignment(IstioNames.InboundCluster(inbound.ContainerPort), [new MeshEndpoint("127.0.0.1", inbound.AppPort, new Dictionary<string, string>(), 1)]),
            };
            cluster.TypedExtensionProtocolOptions[EnvoyBuilders.HttpProtocolOptionsKey] = Any.Pack(ProtocolOptions(InboundIsHttp2(node, index, inbound.ContainerPort)));
            snapshot.AddCluster(cluster);
        }
    }

    /// <summary>An inbound port speaks HTTP/2 to the app when a service selecting this workload declares it gRPC or HTTP/2.</summary>
    private static bool InboundIsHttp2(ProxyNode node, ServiceIndex index, int containerPort) =>
        index.Services.Any(s => s.Namespace == node.Namespace && s.Selector is { Count: > 0 } selector && ServiceIndex.Matches(node.Labels, selector)
            && s.Ports.Any(p => (p.TargetPort ?? p.Number) == containerPort && p.IsHttp2));

    private static Cluster Eds(string name, ProxyKind kind, string? loadBalancer, bool http2)
    {
        var cluster = new Cluster
        {
            Name = name,
            Type = Cluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new Cluster.Types.EdsClusterConfig { EdsConfig = EnvoyBuilders.Ads(), ServiceName = name },
            ConnectTimeout = Duration.FromTimeSpan(ConnectTimeout),
            // Istio's default is LEAST_REQUEST; proxyless gRPC clients get what their gRFCs allow.
            LbPolicy = kind == ProxyKind.ProxylessGrpc || loadBalancer is "ROUND_ROBIN" ? Cluster.Types.LbPolicy.RoundRobin
                : loadBalancer is "RANDOM" ? Cluster.Types.LbPolicy.Random
                : Cluster.Types.LbPolicy.LeastRequest,
        };
        if (kind != ProxyKind.ProxylessGrpc)
        {
            cluster.TypedExtensionProtocolOptions[EnvoyBuilders.HttpProtocolOptionsKey] = Any.Pack(ProtocolOptions(http2));
        }
        return cluster;
    }

    /// <summary>
    /// Istio's protocol selection: gRPC and HTTP/2 ports speak HTTP/2 upstream; plain HTTP ports speak HTTP/1.1 (Istio's
    /// default h2UpgradePolicy DO_NOT_UPGRADE), so an h2c client reaches an app that only knows HTTP/1.1.
    /// </summary>
    private static HttpProtocolOptions ProtocolOptions(bool http2) => http2
        ? new HttpProtocolOptions { ExplicitHttpConfig = new HttpProtocolOptions.Types.ExplicitHttpConfig { Http2ProtocolOptions = new() } }
        : new HttpProtocolOptions { ExplicitHttpConfig = new HttpProtocolOptions.Types.ExplicitHttpConfig { HttpProtocolOptions = new() } };

    private static ClusterLoadAssignment Assignment(string name, IReadOnlyList<MeshEndpoint> endpoints)
    {
        // gRPC clients ignore localities without a weight (gRFC A27), so there is always one weighted locality.
        var locality = new LocalityLbEndpoints { LoadBalancingWeight = 1, Locality = new Envoy.Config.Core.V3.Locality() };
        foreach (var endpoint in endpoints)
        {
            locality.LbEndpoints.Add(new LbEndpoint
            {
                Endpoint = new Endpoint { Address = EnvoyBuilders.SocketAddress(endpoint.Address, endpoint.Port) },
                HealthStatus = Envoy.Config.Core.V3.HealthStatus.Healthy,
                LoadBalancingWeight = (uint)Math.Max(1, endpoint.Weight),
            });
        }
        var assignment = new ClusterLoadAssignment { ClusterName = name };
        if (locality.LbEndpoints.Count > 0)
        {
            assignment.Endpoints.Add(locality);
        }
        return assignment;
    }
}
