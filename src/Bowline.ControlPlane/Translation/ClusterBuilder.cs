using Bowline.ControlPlane.Config;
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
    /// <param name="node">The connecting proxy: its kind shapes the clusters, its locality and labels the EDS priorities.</param>
    public static void AddOutbound(ServiceIndex index, ProxyNode node, SnapshotBuilder snapshot)
    {
        var kind = node.Kind;
        // An EDS cluster with an empty assignment, so that both our proxy and proxyless gRPC clients accept it.
        snapshot.AddCluster(BlackHole(kind));
        snapshot.AddEndpoints(Assignment(IstioNames.BlackHoleCluster, []));

        foreach (var service in index.Services)
        {
            var rule = index.FindDestinationRule(service.Hostname);
            foreach (var port in service.Ports.Where(p => !p.IsProxied))
            {
                snapshot.Warn($"{service.Hostname} port {port.Number} ({port.Protocol}) is not proxied: the mesh carries TCP-based protocols only, so clients reach it directly");
            }
            // gRPC clients only speak HTTP/2: a TCP port's cluster is of no use to them.
            foreach (var port in service.Ports.Where(p => p.IsHttp || (p.IsTcp && kind != ProxyKind.ProxylessGrpc)))
            {
                Add(IstioNames.OutboundCluster(port.Number, null, service.Hostname), null, null);
                foreach (var subset in rule?.Subsets ?? [])
                {
                    Add(IstioNames.OutboundCluster(port.Number, subset.Name, service.Hostname), subset, subset.Labels);
                }

                void Add(string name, Subset? subset, IReadOnlyDictionary<string, string>? subsetLabels)
                {
                    var policy = TrafficPolicy.Effective(rule?.Policy, subset?.Policy, port.Number);
                    var where = $"{rule?.Meta} ({rule?.Meta.File}) for {name}";
                    var target = new UpstreamTarget(index, service, port, subset?.Name, policy, rule);
                    var cluster = Eds(name, kind, target, where, snapshot);
                    if (port.IsHttp)
                    {
                        HealthCheckBuilder.Apply(cluster, index, service, port, subset?.Name, kind, snapshot);
                    }
                    var localities = LocalityLoadBalancer.Prioritize(LocalityLoadBalancer.Group(index.Endpoints(service, port, subsetLabels)), node, policy);
                    var assignment = Assignment(name, localities, UpstreamTlsBuilder.EndpointTlsMode(target, kind));
                    if (service.ResolvesDns)
                    {
                        Dns(cluster, service, kind, assignment, snapshot);
                    }
                    else
                    {
                        snapshot.AddEndpoints(assignment);
                    }
                    snapshot.AddCluster(cluster);
                }
            }
        }
    }

    /// <summary>
    /// An AUTO_PASSTHROUGH gateway's cluster for one service port and subset, as Istio's SNI-DNAT clusters: named by
    /// the mTLS SNI it is chosen by (<c>outbound_.9080_.v1_.reviews...</c>), the DestinationRule's traffic policy, no
    /// transport socket (the client's own mTLS goes through untouched, end to end to the workload's sidecar) and only
    /// endpoints with a sidecar, so the bytes always meet a sidecar's mTLS chain, never a bare app.
    /// </summary>
    public static string AddSniDnat(ServiceIndex index, ProxyNode node, MeshService service, ServicePort port, Subset? subset, SnapshotBuilder snapshot)
    {
        var name = TlsContexts.IstioSni(port.Number, subset?.Name, service.Hostname);
        if (snapshot.Contains(Bowline.Xds.TypeUrls.Cluster, name))
        {
            // Two AUTO_PASSTHROUGH servers admit the same service: one cluster serves both.
            return name;
        }
        var rule = index.FindDestinationRule(service.Hostname);
        var policy = TrafficPolicy.Effective(rule?.Policy, subset?.Policy, port.Number);
        var target = new UpstreamTarget(index, service, port, subset?.Name, policy, rule);
        var cluster = Eds(name, node.Kind, target, $"{rule?.Meta} ({rule?.Meta.File}) for {name}", snapshot, originateTls: false);
        var endpoints = index.Endpoints(service, port, subset?.Labels).Where(e => e.TlsMode == MeshEndpoint.IstioTlsMode).ToList();
        snapshot.AddEndpoints(Assignment(name, LocalityLoadBalancer.Prioritize(LocalityLoadBalancer.Group(endpoints), node, policy)));
        snapshot.AddCluster(cluster);
        return name;
    }

    public static void AddInbound(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        foreach (var inbound in node.InboundPorts)
        {
            var cluster = new Cluster
            {
                Name = IstioNames.InboundCluster(inbound.ContainerPort),
                Type = Cluster.Types.DiscoveryType.Static,
                ConnectTimeout = Duration.FromTimeSpan(ClusterPolicyBuilder.DefaultConnectTimeout),
                LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
                // Istio's inbound clusters carry the same unlimited thresholds as outbound ones (Envoy's defaults would cap them).
                CircuitBreakers = new CircuitBreakers
                {
                    Thresholds = { new CircuitBreakers.Types.Thresholds { MaxConnections = uint.MaxValue, MaxPendingRequests = uint.MaxValue, MaxRequests = uint.MaxValue, MaxRetries = uint.MaxValue, TrackRemaining = true } },
                },
                LoadAssignment = Assignment(IstioNames.InboundCluster(inbound.ContainerPort), LocalityLoadBalancer.Group([new MeshEndpoint("127.0.0.1", inbound.AppPort, new Dictionary<string, string>(), 1)])),
            };
            if (index.Services.FirstOrDefault(s => s.Namespace == node.Namespace && s.Selector is { Count: > 0 } selector && ServiceIndex.Matches(node.Labels, selector)
                && s.Ports.Any(p => (p.TargetPort ?? p.Number) == inbound.ContainerPort)) is { } served)
            {
                IstioTelemetryBuilder.Describe(cluster, served);
            }
            if (!ListenerBuilder.InboundIsTcp(node, index, inbound.ContainerPort))
            {
                cluster.TypedExtensionProtocolOptions[EnvoyBuilders.HttpProtocolOptionsKey] = Any.Pack(ProtocolOptions(InboundIsHttp2(node, index, inbound.ContainerPort)));
            }
            snapshot.AddCluster(cluster);
        }
    }

    /// <summary>An inbound port speaks HTTP/2 to the app when a service selecting this workload declares it gRPC or HTTP/2.</summary>
    private static bool InboundIsHttp2(ProxyNode node, ServiceIndex index, int containerPort) =>
        index.Services.Any(s => s.Namespace == node.Namespace && s.Selector is { Count: > 0 } selector && ServiceIndex.Matches(node.Labels, selector)
            && s.Ports.Any(p => (p.TargetPort ?? p.Number) == containerPort && p.IsHttp2));

    /// <summary>
    /// A DNS ServiceEntry's cluster, as Istio builds it: STRICT_DNS (every address of every name is an endpoint) for
    /// DNS, LOGICAL_DNS (the first address of one name, re-resolved per connection) for DNS_ROUND_ROBIN, with the
    /// names inline and the record TTL honoured.
    /// </summary>
    private static void Dns(Cluster cluster, MeshService service, ProxyKind kind, ClusterLoadAssignment assignment, SnapshotBuilder snapshot)
    {
        // gRPC clients resolve only LOGICAL_DNS clusters (gRFC A37), one name each.
        var logical = service.Resolution == "DNS_ROUND_ROBIN" || kind == ProxyKind.ProxylessGrpc;
        if (logical && assignment.Endpoints.SelectMany(l => l.LbEndpoints).Count() > 1)
        {
            snapshot.Warn($"{service.Hostname}: proxyless gRPC clients resolve one DNS name per cluster (LOGICAL_DNS); only the first endpoint of {cluster.Name} is used for them");
            // The first endpoint of the most preferred locality, alone at priority 0.
            var locality = assignment.Endpoints.OrderBy(l => l.Priority).First();
            var first = locality.LbEndpoints[0];
            locality.LbEndpoints.Clear();
            locality.LbEndpoints.Add(first);
            locality.Priority = 0;
            locality.LoadBalancingWeight = first.LoadBalancingWeight;
            assignment.Endpoints.Clear();
            assignment.Endpoints.Add(locality);
        }
        cluster.Type = logical ? Cluster.Types.DiscoveryType.LogicalDns : Cluster.Types.DiscoveryType.StrictDns;
        cluster.EdsClusterConfig = null;
        cluster.DnsLookupFamily = Cluster.Types.DnsLookupFamily.V4Only;
        cluster.RespectDnsTtl = true;
        cluster.LoadAssignment = assignment;
    }

    private static Cluster BlackHole(ProxyKind kind)
    {
        var cluster = new Cluster
        {
            Name = IstioNames.BlackHoleCluster,
            Type = Cluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new Cluster.Types.EdsClusterConfig { EdsConfig = EnvoyBuilders.Ads(), ServiceName = IstioNames.BlackHoleCluster },
            ConnectTimeout = Duration.FromTimeSpan(ClusterPolicyBuilder.DefaultConnectTimeout),
            LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
        };
        if (kind != ProxyKind.ProxylessGrpc)
        {
            cluster.TypedExtensionProtocolOptions[EnvoyBuilders.HttpProtocolOptionsKey] = Any.Pack(ProtocolOptions(http2: false));
        }
        return cluster;
    }

    /// <param name="target">The destination, with the DestinationRule policy resolved for this cluster's subset and port (Istio's precedence).</param>
    private static Cluster Eds(string name, ProxyKind kind, UpstreamTarget target, string where, SnapshotBuilder snapshot, bool originateTls = true)
    {
        var policy = target.Policy;
        var cluster = new Cluster
        {
            Name = name,
            Type = Cluster.Types.DiscoveryType.Eds,
            EdsClusterConfig = new Cluster.Types.EdsClusterConfig { EdsConfig = EnvoyBuilders.Ads(), ServiceName = name },
            ConnectTimeout = Duration.FromTimeSpan(ClusterPolicyBuilder.DefaultConnectTimeout),
            // Proxyless gRPC clients balance round robin unless a consistent hash applies (what their gRFCs allow).
            LbPolicy = Cluster.Types.LbPolicy.RoundRobin,
        };
        IstioTelemetryBuilder.Describe(cluster, target.Service);
        if (kind == ProxyKind.ProxylessGrpc)
        {
            ClusterPolicyBuilder.ApplyProxyless(cluster, policy, where, snapshot);
            UpstreamTlsBuilder.WarnProxyless(target, snapshot);
            return cluster;
        }
        var http2 = target.Port.IsHttp && ClusterPolicyBuilder.UsesHttp2(policy, target.Port.IsHttp2);
        var options = ProtocolOptions(http2);
        ClusterPolicyBuilder.Apply(cluster, policy, options, http2, where, snapshot);
        if (originateTls)
        {
            UpstreamTlsBuilder.Apply(cluster, options, http2, target, snapshot);
        }
        // A TCP port's cluster carries bytes, not requests: no HTTP protocol options (the connection pool's TCP
        // settings are on the cluster; its HTTP ones have nothing to act on).
        if (target.Port.IsHttp)
        {
            cluster.TypedExtensionProtocolOptions[EnvoyBuilders.HttpProtocolOptionsKey] = Any.Pack(options);
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

    /// <summary>
    /// One LocalityLbEndpoints per group, with its locality, priority and a weight: the one distribute gave it, else
    /// the sum of its endpoints' weights (as Istio sets it), since gRPC clients ignore localities without a weight (gRFC A27) and split traffic across
    /// the localities of a priority by it.
    /// </summary>
    /// <param name="tlsMode">The <c>tlsMode</c> an endpoint's transport socket match metadata carries (automatic mTLS), or null for none.</param>
    private static ClusterLoadAssignment Assignment(string name, IReadOnlyList<LocalityEndpoints> localities, Func<MeshEndpoint, string?>? tlsMode = null)
    {
        var assignment = new ClusterLoadAssignment { ClusterName = name };
        foreach (var group in localities.Where(l => l.Endpoints.Count > 0))
        {
            var locality = new LocalityLbEndpoints
            {
                Locality = new Envoy.Config.Core.V3.Locality { Region = group.Locality.Region, Zone = group.Locality.Zone, SubZone = group.Locality.SubZone },
                Priority = group.Priority,
            };
            foreach (var endpoint in group.Endpoints)
            {
                var lbEndpoint = new LbEndpoint
                {
                    Endpoint = new Endpoint { Address = EnvoyBuilders.SocketAddress(endpoint.Address, endpoint.Port) },
                    HealthStatus = Envoy.Config.Core.V3.HealthStatus.Healthy,
                    LoadBalancingWeight = (uint)Math.Max(1, endpoint.Weight),
                };
                if (tlsMode?.Invoke(endpoint) is { } mode)
                {
                    lbEndpoint.Metadata = TlsContexts.EndpointTlsMode(mode);
                }
                if (endpoint is { WorkloadName: { } workload, Namespace: { } ns })
                {
                    // Istio's endpoint telemetry label: the client's metrics name the server from it when no metadata
                    // was exchanged (TCP, or a request that never reached the server).
                    lbEndpoint.Metadata ??= new Envoy.Config.Core.V3.Metadata();
                    lbEndpoint.Metadata.FilterMetadata[Bowline.Xds.CanonicalNames.EndpointMetadataKey] = new Google.Protobuf.WellKnownTypes.Struct
                    {
                        Fields = { [Bowline.Xds.CanonicalNames.EndpointWorkloadField] = Google.Protobuf.WellKnownTypes.Value.ForString(Bowline.Xds.CanonicalNames.EndpointWorkload(workload, ns, endpoint.Labels, ProxyNode.DefaultClusterId)) },
                    };
                }
                locality.LbEndpoints.Add(lbEndpoint);
            }
            // Envoy caps the locality weights of a priority at uint32 in total; saturate, as Istio does on overflow.
            locality.LoadBalancingWeight = group.Weight ?? group.EndpointWeight;
            assignment.Endpoints.Add(locality);
        }
        return assignment;
    }
}
