using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Bowline.Proxy.Stats;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>Per-request objects for filter tests: a request as Kestrel would hand it over, on a chain with no routes unless given a table (then the route is resolved, as the connection manager does).</summary>
internal static class Streams
{
    public static HttpStream Create(TimeProvider time, ProxyStats? stats = null, Action<HttpRequest>? request = null, Bowline.Proxy.Routing.RouteTable? routes = null)
    {
        var context = new DefaultHttpContext();
        context.Request.Method = "GET";
        context.Request.Host = new HostString("reviews:9080");
        context.Request.Path = "/r";
        context.Response.Body = new MemoryStream();
        request?.Invoke(context.Request);
        var chain = new HttpChain("test", routes?.Name, routes, [], websocket: false, generateRequestId: false, new HttpChainStats(stats ?? new ProxyStats(), "test"));
        var stream = new HttpStream(context, chain, time);
        if (routes is not null)
        {
            stream.ResolveRoute();
        }
        return stream;
    }

    public static string Body(HttpStream stream)
    {
        var body = (MemoryStream)stream.Context.Response.Body;
        return System.Text.Encoding.UTF8.GetString(body.ToArray());
    }
}
