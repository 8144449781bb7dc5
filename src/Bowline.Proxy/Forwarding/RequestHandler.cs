using System.Net;
using System.Net.Sockets;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Bowline.Proxy.Forwarding;

/// <summary>
/// The life of a proxied request: read one snapshot, pick the listener's chain by local port, the virtual host by
/// authority, the route by match, the cluster by weight, the endpoint by the balancer, then forward with YARP and map
/// failures to Envoy's status codes and response flags.
/// </summary>
internal sealed partial class RequestHandler(IHttpForwarder forwarder, ProxyStats stats, Random random, TimeProvider time, ILogger<RequestHandler> logger)
{
    private static readonly ForwarderRequestConfig Http1 = new() { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionOrLower, ActivityTimeout = TimeSpan.FromHours(1) };
    private static readonly ForwarderRequestConfig Http2 = new() { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, ActivityTimeout = TimeSpan.FromHours(1) };

    private readonly Stat _flagNoRoute = stats.Get("bowline.response_flags.NR");
    private readonly Stat _flagNoCluster = stats.Get("bowline.response_flags.NC");
    private readonly Stat _flagNoHealthy = stats.Get("bowline.response_flags.UH");
    private readonly Stat _flagConnectFailure = stats.Get("bowline.response_flags.UF");
    private readonly Stat _flagTimeout = stats.Get("bowline.response_flags.UT");
    private readonly Stat _flagReset = stats.Get("bowline.response_flags.UR");

    /// <summary>
    /// Handles one request on <paramref name="listener"/>: the compiled listener of the snapshot its server was last
    /// given (the xDS loop hands every running server its new version on each swap, and a draining server keeps its last).
    /// </summary>
    public async Task HandleAsync(HttpContext context, CompiledListener listener)
    {
        var chain = listener.ChainFor(context.Connection.LocalPort);
        if (chain is null)
        {
            await LocalReplyAsync(context, null, StatusCodes.Status404NotFound, ResponseFlags.NoRoute, _flagNoRoute, "no filter chain for this port").ConfigureAwait(false);
            return;
        }
        chain.Stats.RequestsTotal.Increment();
        var route = FindRoute(chain.Routes, context.Request);
        if (route is null)
        {
            chain.Stats.NoRoute.Increment();
            await LocalReplyAsync(context, chain, StatusCodes.Status404NotFound, ResponseFlags.NoRoute, _flagNoRoute, "route not found").ConfigureAwait(false);
            return;
        }
        if (!chain.WebSocket && IsWebSocketUpgrade(context))
        {
            await LocalReplyAsync(context, chain, StatusCodes.Status403Forbidden, ResponseFlags.NoRoute, _flagNoRoute, "upgrade not allowed").ConfigureAwait(false);
            return;
        }
        var target = route.Pick(random);
        if (target.Cluster is not { } cluster)
        {
            chain.Stats.NoCluster.Increment();
            await LocalReplyAsync(context, chain, StatusCodes.Status503ServiceUnavailable, ResponseFlags.NoClusterFound, _flagNoCluster, "no cluster " + target.ClusterName).ConfigureAwait(false);
            return;
        }
        var endpoint = cluster.PickEndpoint();
        if (endpoint is null)
        {
            cluster.Stats.NoHealthyUpstream.Increment();
            await LocalReplyAsync(context, chain, StatusCodes.Status503ServiceUnavailable, ResponseFlags.NoHealthyUpstream, _flagNoHealthy, "no healthy upstream").ConfigureAwait(false);
            return;
        }
        await ForwardAsync(context, chain, route, cluster, endpoint).ConfigureAwait(false);
    }

    private async Task ForwardAsync(HttpContext context, HttpChain chain, RouteEntry route, UpstreamCluster cluster, UpstreamEndpoint endpoint)
    {
        var config = cluster.Protocol switch
        {
            UpstreamProtocol.Http2 => Http2,
            UpstreamProtocol.Downstream when HttpProtocol.IsHttp2(context.Request.Protocol) => Http2,
            _ => Http1,
        };
        var transformer = chain.GenerateRequestId ? AuthorityPreservingTransformer.WithRequestId : AuthorityPreservingTransformer.Instance;
        cluster.Stats.RequestsTotal.Increment();
        cluster.Stats.RequestsActive.Increment();
        endpoint.RequestStarted();
        // A CancellationTokenSource only when the route has a timeout: the common case allocates none.
        using var timeout = route.Timeout is { } limit ? new CancellationTokenSource(limit, time) : null;
        ForwarderError error;
        try
        {
            error = timeout is null
                ? await forwarder.SendAsync(context, endpoint.Prefix, cluster.Invoker, config, transformer).ConfigureAwait(false)
                : await forwarder.SendAsync(context, endpoint.Prefix, cluster.Invoker, config, transformer, timeout.Token).ConfigureAwait(false);
        }
        finally
        {
            endpoint.RequestEnded();
            cluster.Stats.RequestsActive.Decrement();
        }

        if (error == ForwarderError.None)
        {
            CountUpstream(cluster, context.Response.StatusCode);
            chain.Stats.Completed(context.Response.StatusCode);
            return;
        }
        var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (timeout?.IsCancellationRequested == true && !context.RequestAborted.IsCancellationRequested)
        {
            cluster.Stats.Timeouts.Increment();
            LogUpstreamFailure(cluster, endpoint, ResponseFlags.UpstreamRequestTimeout, "route timeout");
            await LocalReplyAsync(context, chain, StatusCodes.Status504GatewayTimeout, ResponseFlags.UpstreamRequestTimeout, _flagTimeout, "upstream request timeout").ConfigureAwait(false);
            return;
        }
        switch (error)
        {
            case ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled
                or ForwarderError.RequestBodyClient or ForwarderError.ResponseBodyClient or ForwarderError.UpgradeRequestCanceled
                or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeRequestClient or ForwarderError.UpgradeResponseClient:
                // The client went away (Envoy's DC); nothing to answer.
                chain.Stats.Completed(499);
                return;
            case ForwarderError.Request when IsConnectFailure(exception):
                cluster.Stats.ConnectFailures.Increment();
                LogUpstreamFailure(cluster, endpoint, ResponseFlags.UpstreamConnectionFailure, exception?.Message ?? "");
                await LocalReplyAsync(context, chain, StatusCodes.Status503ServiceUnavailable, ResponseFlags.UpstreamConnectionFailure, _flagConnectFailure,
                    "upstream connect error or disconnect/reset before headers. reset reason: connection failure").ConfigureAwait(false);
                return;
            case ForwarderError.RequestTimedOut:
                cluster.Stats.Timeouts.Increment();
                await LocalReplyAsync(context, chain, StatusCodes.Status504GatewayTimeout, ResponseFlags.UpstreamRequestTimeout, _flagTimeout, "upstream request timeout").ConfigureAwait(false);
                return;
            default:
                cluster.Stats.Resets.Increment();
                LogUpstreamFailure(cluster, endpoint, ResponseFlags.UpstreamRemoteReset, $"{error}: {exception?.Message}");
                await LocalReplyAsync(context, chain, StatusCodes.Status503ServiceUnavailable, ResponseFlags.UpstreamRemoteReset, _flagReset,
                    "upstream connect error or disconnect/reset before headers. reset reason: remote reset").ConfigureAwait(false);
                return;
        }
    }

    private static RouteEntry? FindRoute(RouteTable? table, HttpRequest request)
    {
        var host = table?.FindVirtualHost(request.Host.Value ?? "");
        if (host is null)
        {
            return null;
        }
        foreach (var route in host.Routes)
        {
            if (route.Matches(request))
            {
                return route;
            }
        }
        return null;
    }

    /// <summary>An HTTP/1.1 <c>Upgrade: websocket</c> (no WebSocket middleware runs here, so the raw upgrade feature is read).</summary>
    private static bool IsWebSocketUpgrade(HttpContext context) =>
        context.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpUpgradeFeature>()?.IsUpgradableRequest == true
        && context.Request.Headers.Upgrade.ToString().Contains("websocket", StringComparison.OrdinalIgnoreCase);

    private static bool IsConnectFailure(Exception? exception) => exception switch
    {
        HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => true,
        HttpRequestException { InnerException: SocketException } => true,
        _ => false,
    };

    private static void CountUpstream(UpstreamCluster cluster, int status)
    {
        if (status >= 500)
        {
            cluster.Stats.Requests5xx.Increment();
        }
        else if (status >= 400)
        {
            cluster.Stats.Requests4xx.Increment();
        }
        else if (status >= 200)
        {
            cluster.Stats.Requests2xx.Increment();
        }
    }

    /// <summary>An Envoy-style local reply: status, a plain-text body, and the response flag in a header. Only if nothing was sent yet.</summary>
    private static Task LocalReplyAsync(HttpContext context, HttpChain? chain, int status, string flag, Stat flagStat, string body)
    {
        flagStat.Increment();
        chain?.Stats.Completed(status);
        if (context.Response.HasStarted)
        {
            // Headers already went out: the only honest signal left is to reset the stream.
            context.Abort();
            return Task.CompletedTask;
        }
        context.Response.Clear();
        context.Response.StatusCode = status;
        context.Response.Headers[ResponseFlags.Header] = flag;
        context.Response.ContentType = "text/plain";
        return context.Response.WriteAsync(body);
    }

    /// <summary>At most one line per cluster every few seconds: an outage at 1,000 rps must not become 1,000 log lines a second (the counters count every one).</summary>
    private void LogUpstreamFailure(UpstreamCluster cluster, UpstreamEndpoint endpoint, string flag, string reason)
    {
        if (cluster.Stats.ShouldLog(time.GetTimestamp(), time.TimestampFrequency))
        {
            LogUpstreamFailure(logger, cluster.Name, endpoint.ToString(), flag, reason);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "upstream {Cluster} endpoint {Endpoint} failed ({Flag}): {Reason}; further failures of this cluster are counted in its stats and logged at most every 5 s")]
    private static partial void LogUpstreamFailure(ILogger logger, string cluster, string endpoint, string flag, string reason);
}
