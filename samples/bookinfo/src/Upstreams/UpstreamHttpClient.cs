namespace Bowline.Samples.Bookinfo.Upstreams;

/// <summary>Builds the one <see cref="HttpClient"/> a role uses for all its outgoing calls.</summary>
internal static class UpstreamHttpClient
{
    public static HttpClient Create()
    {
        var handler = new SocketsHttpHandler
        {
            // Proxy stays null, so the handler uses HttpClient.DefaultProxy, which on Linux and
            // macOS reads HTTP_PROXY. `bowline up` sets HTTP_PROXY to the workload's sidecar, so
            // every call leaves as an absolute-form request (GET http://reviews:9080/...) to the
            // sidecar, which routes it by host. This is how the app joins the mesh: keep it on.
            UseProxy = true,

            // The Cookie header is the caller's, propagated per request; a shared cookie jar
            // would leak one user's cookies into another user's calls.
            UseCookies = false,

            // A redirect is the caller's business, as with Python's requests in Istio's sample.
            AllowAutoRedirect = false,

            // Connections to the sidecar are reused, but not held forever after a quiet spell.
            PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30),

            // Only the propagated trace headers go out: no traceparent invented by .NET.
            ActivityHeadersPropagator = null,
        };

        // Each call sets its own deadline (Istio's per-service application timeouts).
        return new HttpClient(handler) { Timeout = Timeout.InfiniteTimeSpan };
    }
}
