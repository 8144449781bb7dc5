using Bowline.Proxy.Stats;
using Bowline.Proxy.Xds;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace Bowline.Proxy.Admin;

/// <summary>
/// Istio's status port (15020): what a scraper and a kubelet need, nothing that reveals config. Admin serves the same
/// paths, its <c>/stats/prometheus</c> with the proxy's metrics only, as Envoy's admin does.
/// </summary>
internal static class StatusEndpoints
{
    public static bool Serves(PathString path) => path == "/stats/prometheus" || path == "/healthz/ready";

    public static void Map(IEndpointRouteBuilder app, PrometheusEndpoint prometheus, ConfigApplier applier, Func<HttpContext, bool> isAdmin)
    {
        // The explicit return type matters: an async lambda taking only HttpContext would otherwise bind to RequestDelegate
        // and its result would be dropped (an empty 200).
        app.MapGet("/stats/prometheus", async Task<IResult> (HttpContext context) => Results.Text(
            isAdmin(context) ? prometheus.RenderProxy() : await prometheus.RenderMergedAsync(context.RequestAborted).ConfigureAwait(false), PrometheusText.ContentType));
        app.MapGet("/healthz/ready", () => applier.Initialized ? Results.Text("ready\n") : Results.Text("not ready: waiting for listeners and clusters from the control plane\n", statusCode: 503));
    }
}
