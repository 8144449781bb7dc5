using Bowline.Proxy.Configuration;
using Microsoft.AspNetCore.Http;
using Hcm = Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager;

namespace Bowline.Proxy.Http;

/// <summary>How a packed trace decision reads in an <c>x-request-id</c> UUID (Envoy's UUID request-id extension).</summary>
internal enum TraceReason
{
    NotTraced,
    Sampled,
    Forced,
    Client,
}

/// <summary>
/// Envoy's <c>request_id_extension</c>, whose only implementation is the UUID one (<c>UuidRequestIdConfig</c>), compiled
/// once per update: whether sampling draws from the <c>x-request-id</c> (so every hop of one request draws alike) and
/// whether the decision is packed into the UUID's version digit, where the next Envoy-shaped hop reads it.
/// </summary>
internal sealed record RequestIdExtension(bool UseRequestIdForTraceSampling, bool PackTraceReason)
{
    private const string UuidTypeUrl = "type.googleapis.com/envoy.extensions.request_id.uuid.v3.UuidRequestIdConfig";
    private const string Header = "x-request-id";

    // Envoy's positions and digits: the UUID's version digit carries the reason ('4', an ordinary v4 UUID: none).
    private const int ReasonPosition = 14;

    /// <summary>Envoy's default when the HCM names no extension: both on.</summary>
    public static RequestIdExtension Default { get; } = new(true, true);

    public static RequestIdExtension Compile(Hcm hcm, string where)
    {
        if (hcm.RequestIdExtension is not { } extension)
        {
            return Default;
        }
        var ewhere = where + " request_id_extension";
        XdsFields.Check(extension, ewhere, "typed_config");
        if (extension.TypedConfig is not { } typed || typed.TypeUrl != UuidTypeUrl)
        {
            throw new ProxyConfigException($"{ewhere}: {extension.TypedConfig?.TypeUrl ?? "(no typed_config)"} is not supported; Envoy's request id extension is {UuidTypeUrl}");
        }
        var uuid = typed.Unpack<Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig>();
        XdsFields.Check(uuid, ewhere, "pack_trace_reason", "use_request_id_for_trace_sampling");
        return new RequestIdExtension(uuid.UseRequestIdForTraceSampling ?? true, uuid.PackTraceReason ?? true);
    }

    /// <summary>The decision a previous hop packed into the request's UUID; null when it is not a UUID or carries none.</summary>
    public static TraceReason? Packed(IHeaderDictionary headers) => Uuid(headers) is { } id ? id[ReasonPosition] switch
    {
        '9' => TraceReason.Sampled,
        'a' => TraceReason.Forced,
        'b' => TraceReason.Client,
        _ => null,
    } : null;

    /// <summary>Writes the decision into the request's UUID, as Envoy's <c>setTraceReason</c> does.</summary>
    public static void Pack(IHeaderDictionary headers, TraceReason reason)
    {
        if (Uuid(headers) is not { } id)
        {
            return;
        }
        var digit = reason switch
        {
            TraceReason.Sampled => '9',
            TraceReason.Forced => 'a',
            TraceReason.Client => 'b',
            _ => '4',
        };
        if (id[ReasonPosition] != digit)
        {
            headers[Header] = string.Create(id.Length, (id, digit), static (span, state) =>
            {
                state.id.AsSpan().CopyTo(span);
                span[ReasonPosition] = state.digit;
            });
        }
    }

    private static string? Uuid(IHeaderDictionary headers) =>
        headers.TryGetValue(Header, out var id) && id.Count == 1 && id[0] is { Length: 36 } uuid && uuid[8] == '-' && uuid[13] == '-' ? uuid : null;
}
