using Bowline.Proxy.Filters.Http;
using Bowline.Proxy.Filters.Http.Cors;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Extensions.Filters.Http.Cors.V3;
using Envoy.Type.Matcher.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.Filters;

/// <summary>The CORS filter with a route's policy, compiled as the route compiler compiles it.</summary>
public sealed class CorsFilterTests : IDisposable
{
    private readonly CompilerHarness _compiler = new();
    private readonly FakeTimeProvider _time = new();

    private (IHttpFilter Filter, Bowline.Proxy.Routing.RouteEntry Route) Setup()
    {
        var route = ClusterRoute("cors", Prefix("/"), "c");
        route.TypedPerFilterConfig["envoy.filters.http.cors"] = Any.Pack(new CorsPolicy
        {
            AllowOriginStringMatch = { new StringMatcher { Exact = "https://app.example.com" } },
            AllowMethods = "GET,POST",
            AllowHeaders = "x-token",
            MaxAge = "600",
            AllowCredentials = true,
        });
        var entry = _compiler.CompileRoute(route);
        var filter = new CorsFilterFactory().Create("envoy.filters.http.cors", Any.Pack(new Cors()), new FilterFactoryContext(new ProxyStats(), _time, new Random(42), NullLoggerFactory.Instance, "test"), "cors");
        return (filter, entry);
    }

    [Fact]
    public async Task PreflightFromAllowedOrigin_IsAnsweredLocallyWithThePolicy()
    {
        var (filter, route) = Setup();
        var stream = StreamOn(route, "OPTIONS", "https://app.example.com", preflight: true);

        var status = await filter.OnRequestAsync(stream);

        Assert.Equal(FilterStatus.Stop, status);
        var headers = stream.Context.Response.Headers;
        Assert.Equal("https://app.example.com", headers.AccessControlAllowOrigin.ToString());
        Assert.Equal("GET,POST", headers["access-control-allow-methods"].ToString());
        Assert.Equal("600", headers["access-control-max-age"].ToString());
        Assert.Equal("true", headers.AccessControlAllowCredentials.ToString());
    }

    [Fact]
    public async Task RequestFromOtherOrigin_PassesUntouched()
    {
        var (filter, route) = Setup();
        var stream = StreamOn(route, "GET", "https://evil.example.com", preflight: false);

        var status = await filter.OnRequestAsync(stream);
        stream.OnResponseHeaders();

        Assert.Equal(FilterStatus.Continue, status);
        Assert.False(stream.Context.Response.Headers.ContainsKey("access-control-allow-origin"));
    }

    [Fact]
    public async Task ActualRequestFromAllowedOrigin_ResponseCarriesAllowOrigin()
    {
        var (filter, route) = Setup();
        var stream = StreamOn(route, "GET", "https://app.example.com", preflight: false);

        await filter.OnRequestAsync(stream);
        stream.OnResponseHeaders();

        Assert.Equal("https://app.example.com", stream.Context.Response.Headers.AccessControlAllowOrigin.ToString());
    }

    private Bowline.Proxy.Http.HttpStream StreamOn(Bowline.Proxy.Routing.RouteEntry route, string method, string origin, bool preflight)
    {
        var table = new Bowline.Proxy.Routing.RouteTable("t", [(["*"], new Bowline.Proxy.Routing.VirtualHostEntry("all", [route], null))]);
        var context = new Microsoft.AspNetCore.Http.DefaultHttpContext();
        context.Request.Method = method;
        context.Request.Host = new Microsoft.AspNetCore.Http.HostString("reviews");
        context.Request.Path = "/";
        context.Request.Headers.Origin = origin;
        if (preflight)
        {
            context.Request.Headers["access-control-request-method"] = "POST";
        }
        var chain = new Bowline.Proxy.Configuration.HttpChain("test", null, table, [], false, false, new Bowline.Proxy.Configuration.HttpChainStats(new ProxyStats(), "test"));
        var stream = new Bowline.Proxy.Http.HttpStream(context, chain, _time);
        stream.ResolveRoute();
        return stream;
    }

    public void Dispose() => _compiler.Dispose();
}
