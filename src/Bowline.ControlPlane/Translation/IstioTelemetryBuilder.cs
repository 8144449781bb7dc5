using Envoy.Config.Cluster.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Istio's standard metrics, as Istio's control plane configures them: on every sidecar and gateway HCM the
/// <c>istio.metadata_exchange</c> filter first (the client side sends its metadata upstream and learns the server's
/// from the response; the server side the reverse) and <c>istio.stats</c> just before the router; on every TCP chain
/// <c>istio.stats</c> before the tcp_proxy. Both are TypedStructs with Istio's type URLs, so an Envoy with Istio's
/// extensions reads the same config. Every cluster carries Istio's <c>istio</c> metadata naming its service, which
/// the stats filter reads for <c>destination_service</c>.
/// </summary>
internal static class IstioTelemetryBuilder
{
    public const string MetadataExchangeFilter = "istio.metadata_exchange";
    public const string StatsFilter = "istio.stats";
    public const string MetadataExchangeTypeUrl = "type.googleapis.com/io.istio.http.peer_metadata.Config";
    public const string StatsTypeUrl = "type.googleapis.com/stats.PluginConfig";

    /// <summary>
    /// Adds both filters to an HCM built for <paramref name="side"/> (a gateway is a client). With the metrics switched
    /// off for that side (Telemetry <c>metrics</c> overrides), the stats filter is left out and the metadata exchange
    /// stays, as in Istio: the peer is still learned (access logs, the other side's metrics), nothing is recorded here.
    /// </summary>
    public static void Apply(HttpConnectionManager hcm, Config.MeshConfig mesh, ProxyNode node, Config.TelemetryMode side)
    {
        var methods = new Struct();
        var headers = Value.ForList(Value.ForStruct(new Struct { Fields = { ["istio_headers"] = Value.ForStruct(new Struct()) } }));
        if (side == Config.TelemetryMode.Server)
        {
            methods.Fields["downstream_discovery"] = headers;
            methods.Fields["downstream_propagation"] = headers.Clone();
        }
        else
        {
            methods.Fields["upstream_discovery"] = headers;
            methods.Fields["upstream_propagation"] = headers.Clone();
        }
        hcm.HttpFilters.Insert(0, new HttpFilter { Name = MetadataExchangeFilter, TypedConfig = TypedStruct(MetadataExchangeTypeUrl, methods) });
        if (mesh.MetricsEnabled(node.Namespace, node.Labels, side))
        {
            hcm.HttpFilters.Insert(hcm.HttpFilters.Count - 1, new HttpFilter { Name = StatsFilter, TypedConfig = TypedStruct(StatsTypeUrl, new Struct()) });
        }
    }

    /// <summary>Where policy filters (JWT, RBAC) go: after the metadata exchange, so a request they refuse is still labelled by its peer.</summary>
    public static int FirstPolicyIndex(HttpConnectionManager hcm) => hcm.HttpFilters.Count > 0 && hcm.HttpFilters[0].Name == MetadataExchangeFilter ? 1 : 0;

    /// <summary>Puts <c>istio.stats</c> before every tcp_proxy of the listener (after its RBAC filters).</summary>
    public static void ApplyToTcp(Envoy.Config.Listener.V3.Listener listener, Config.MeshConfig mesh, ProxyNode node, Config.TelemetryMode side)
    {
        if (!mesh.MetricsEnabled(node.Namespace, node.Labels, side))
        {
            return;
        }
        foreach (var chain in listener.FilterChains)
        {
            var at = chain.Filters.Select((f, i) => (f, i)).FirstOrDefault(x => x.f.Name == TcpProxyBuilder.FilterName, (null!, -1)).Item2;
            if (at >= 0 && chain.Filters.All(f => f.Name != StatsFilter))
            {
                chain.Filters.Insert(at, new Envoy.Config.Listener.V3.Filter { Name = StatsFilter, TypedConfig = TypedStruct(StatsTypeUrl, new Struct()) });
            }
        }
    }

    /// <summary>Istio's cluster metadata: <c>istio.services = [{host, name, namespace}]</c>.</summary>
    public static void Describe(Cluster cluster, Registry.MeshService service)
    {
        var entry = new Struct
        {
            Fields =
            {
                ["host"] = Value.ForString(service.Hostname),
                ["name"] = Value.ForString(service.ShortName ?? service.Hostname),
                ["namespace"] = Value.ForString(service.Namespace),
            },
        };
        cluster.Metadata ??= new Envoy.Config.Core.V3.Metadata();
        cluster.Metadata.FilterMetadata["istio"] = new Struct { Fields = { ["services"] = Value.ForList(Value.ForStruct(entry)) } };
    }

    private static Any TypedStruct(string typeUrl, Struct value) => Any.Pack(new Udpa.Type.V1.TypedStruct { TypeUrl = typeUrl, Value = value });
}
