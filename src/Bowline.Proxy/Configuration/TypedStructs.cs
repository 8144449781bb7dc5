using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// Envoy's <c>TypedStruct</c> (<c>udpa.type.v1</c> and <c>xds.type.v3</c>): an extension's config as a JSON-like
/// Struct under the extension's own type URL. Istio sends its filters (peer metadata, stats) this way; the catalogue
/// is keyed by the inner type URL.
/// </summary>
internal static class TypedStructs
{
    private const string Udpa = "type.googleapis.com/udpa.type.v1.TypedStruct";
    private const string Xds = "type.googleapis.com/xds.type.v3.TypedStruct";

    /// <summary>The type URL an extension is keyed by: a TypedStruct's inner one, else the Any's own.</summary>
    public static string TypeUrlOf(Any config)
    {
        return config.TypeUrl switch
        {
            Udpa => Normalize(config.Unpack<Udpa.Type.V1.TypedStruct>().TypeUrl),
            Xds => Normalize(config.Unpack<global::Xds.Type.V3.TypedStruct>().TypeUrl),
            _ => config.TypeUrl,
        };
    }

    /// <summary>The Struct a TypedStruct carries; an empty one when it has none.</summary>
    public static Struct ValueOf(Any config, string where)
    {
        var value = config.TypeUrl switch
        {
            Udpa => config.Unpack<Udpa.Type.V1.TypedStruct>().Value,
            Xds => config.Unpack<global::Xds.Type.V3.TypedStruct>().Value,
            _ => throw new ProxyConfigException($"{where}: expected the config as a TypedStruct (udpa.type.v1 or xds.type.v3), got {config.TypeUrl}"),
        };
        return value ?? new Struct();
    }

    /// <summary>Refuses any field of <paramref name="value"/> not in <paramref name="known"/>, as <see cref="XdsFields.Check"/> does for protos.</summary>
    public static void Check(Struct value, string where, params string[] known)
    {
        foreach (var key in value.Fields.Keys)
        {
            if (Array.IndexOf(known, key) < 0)
            {
                throw new ProxyConfigException($"{where}: field {key} is not supported; supported: {string.Join(", ", known)}");
            }
        }
    }

    // Envoy accepts a TypedStruct's type_url with or without the type.googleapis.com/ prefix.
    private static string Normalize(string typeUrl) => typeUrl.Contains('/', StringComparison.Ordinal) ? typeUrl : "type.googleapis.com/" + typeUrl;
}
