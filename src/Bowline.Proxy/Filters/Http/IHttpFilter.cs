using Bowline.Proxy.Http;

namespace Bowline.Proxy.Filters.Http;

/// <summary>What a filter tells the chain after seeing a request.</summary>
internal enum FilterStatus
{
    /// <summary>Run the next filter.</summary>
    Continue,

    /// <summary>The filter answered (a local reply) or the router finished: stop the chain.</summary>
    Stop,
}

/// <summary>
/// A compiled HTTP filter of one HTTP connection manager: the immutable product of its factory, shared by every
/// request the chain serves. Per-request state lives in the <see cref="HttpStream"/>, never in the filter.
/// </summary>
/// <remarks>Implementations must be thread-safe and should not allocate when they have nothing to do.</remarks>
internal interface IHttpFilter
{
    /// <summary>The name the HCM gave the filter (<c>envoy.filters.http.fault</c>); routes key their per-filter config by it.</summary>
    string Name { get; }

    ValueTask<FilterStatus> OnRequestAsync(HttpStream stream);
}

/// <summary>
/// A filter that also acts on the response headers (CORS adds its headers): it asks for that per request with
/// <see cref="HttpStream.AddResponseFilter"/>, and is then called once before the headers go out, for proxied responses
/// and local replies alike.
/// </summary>
internal interface IHttpResponseFilter
{
    void OnResponseHeaders(HttpStream stream);
}

/// <summary>
/// A filter that reports on the finished request (Envoy's log callback): called once per request after its record is
/// complete, whether the request reached the filter or an earlier one answered it. Must not throw.
/// </summary>
internal interface IHttpStreamObserver
{
    void OnStreamComplete(HttpStream stream);
}
