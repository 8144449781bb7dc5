using Bowline.Proxy.Configuration;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Filters.Http.PeerMetadata;

/// <summary>
/// Istio's <c>istio.metadata_exchange</c> HTTP filter (<c>io.istio.http.peer_metadata.Config</c>, sent as a
/// TypedStruct): which side discovers its peer from Istio's headers and which side sends its own. Only the
/// <c>istio_headers</c> method is implemented; <c>workload_discovery</c> and <c>baggage</c> are refused by name.
/// </summary>
internal sealed class PeerMetadataFilterFactory(Telemetry.LocalWorkload local) : IHttpFilterFactory
{
    public const string TypeUrl = "type.googleapis.com/io.istio.http.peer_metadata.Config";

    public string ConfigTypeUrl => TypeUrl;

    public string? PerRouteTypeUrl => null;

    public IHttpFilter Create(string name, Any config, FilterFactoryContext context, string where)
    {
        var value = TypedStructs.ValueOf(config, where);
        TypedStructs.Check(value, where, "downstream_discovery", "upstream_discovery", "downstream_propagation", "upstream_propagation", "shared_with_upstream");
        return new PeerMetadataFilter(name, local,
            downstreamDiscovery: Methods(value, "downstream_discovery", where),
            upstreamDiscovery: Methods(value, "upstream_discovery", where),
            downstreamPropagation: Methods(value, "downstream_propagation", where),
            upstreamPropagation: Methods(value, "upstream_propagation", where));
    }

    /// <summary>True when the list names <c>istio_headers</c>; any other method is a NACK.</summary>
    private static bool Methods(Struct value, string field, string where)
    {
        if (!value.Fields.TryGetValue(field, out var list))
        {
            return false;
        }
        if (list.KindCase != Value.KindOneofCase.ListValue)
        {
            throw new ProxyConfigException($"{where}: {field} must be a list of methods, e.g. [{{istio_headers: {{}}}}]");
        }
        var headers = false;
        foreach (var method in list.ListValue.Values)
        {
            var key = method.KindCase == Value.KindOneofCase.StructValue && method.StructValue.Fields.Count == 1 ? method.StructValue.Fields.Keys.First() : null;
            if (key != "istio_headers")
            {
                throw new ProxyConfigException($"{where}: {field} method {key ?? method.ToString()} is not supported; Bowline exchanges peer metadata with istio_headers");
            }
            headers = true;
        }
        return headers;
    }
}
