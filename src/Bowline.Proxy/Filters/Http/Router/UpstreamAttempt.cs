using Bowline.Proxy.Http;
using Bowline.Proxy.Routing;
using Microsoft.AspNetCore.Http;
using Yarp.ReverseProxy.Forwarder;

namespace Bowline.Proxy.Filters.Http.Router;

/// <summary>
/// The router's per-request transformer (Envoy's upstream request): shapes what each attempt sends (authority kept,
/// rewrites, header mutations, request id, attempt count) and, when the response headers arrive, decides whether the
/// response goes to the client or is discarded for a retry — before anything has been sent.
/// </summary>
/// <remarks>One per request, reused across its attempts; not thread-safe.</remarks>
internal sealed class UpstreamAttempt(HttpStream stream, RouteEntry route, RouteAction action, WeightedTarget target) : HttpTransformer
{
    /// <summary>1 for the first attempt.</summary>
    public int Number { get; set; }

    /// <summary>Set by the router before an attempt: whether a retriable response may be discarded for another try.</summary>
    public bool MayRetry { get; set; }

    /// <summary>The cluster and limits of this attempt: the retry budget is checked when the response arrives, before it is discarded.</summary>
    public (Clusters.ClusterState Cluster, Clusters.CircuitBreakerLimits Limits) Budget { get; set; }

    /// <summary>Set by the router when the cluster's max_requests_per_connection says this request must be the connection's last.</summary>
    public bool CloseConnection { get; set; }

    /// <summary>The TLS this attempt's endpoint is reached with; handed to the pool's connect callback on the request.</summary>
    public Tls.UpstreamTls? Tls { get; set; }

    /// <summary>Set when the last response was discarded for a retry; its status is kept for the record.</summary>
    public int? DiscardedStatus { get; private set; }

    /// <summary>Whether the last response was sent on to the client.</summary>
    public bool Forwarded { get; private set; }

    /// <summary>The request body as the router reads it; a retriable response is discarded only while it can still be replayed.</summary>
    public UpstreamBody? Body { get; set; }

    public void Reset()
    {
        DiscardedStatus = null;
        Forwarded = false;
    }

    public override async ValueTask TransformRequestAsync(HttpContext httpContext, HttpRequestMessage proxyRequest, string destinationPrefix, CancellationToken cancellationToken)
    {
        await base.TransformRequestAsync(httpContext, proxyRequest, destinationPrefix, cancellationToken).ConfigureAwait(false);
        var request = httpContext.Request;
        proxyRequest.Headers.Host = target.HostRewrite ?? action.HostRewrite ?? request.Host.Value;
        if (action.RewritePath(request.Path.Value ?? "/", route.MatchedPrefix) is { } path)
        {
            // Encoded again as a URI component: a decoded %23 or %3F must not turn into a fragment or a query.
            proxyRequest.RequestUri = new Uri(destinationPrefix + new PathString(path).ToUriComponent() + request.QueryString.ToUriComponent(), UriKind.Absolute);
        }
        route.RequestHeaders?.Apply(proxyRequest);
        target.RequestHeaders?.Apply(proxyRequest);
        if (Tls is not null)
        {
            proxyRequest.Options.Set(Clusters.ConnectionPools.TlsOption, Tls);
            if (stream.Info.UpstreamHost is { } endpoint)
            {
                proxyRequest.Options.Set(Clusters.ConnectionPools.EndpointOption, endpoint);
            }
            if (Tls is { AutoSni: true, Sni: null } && proxyRequest.Headers.Host is { Length: > 0 } authority)
            {
                // YARP fills RequestUri after the transform when it is still null: build it here to rename its host.
                var uri = proxyRequest.RequestUri ?? Yarp.ReverseProxy.Forwarder.RequestUtilities.MakeDestinationAddress(destinationPrefix, request.Path, request.QueryString);
                // auto_sni: the pool is chosen by the server name, the socket still goes to the endpoint.
                var serverName = authority.Split(':')[0];
                proxyRequest.Options.Set(Clusters.ConnectionPools.AddressOption, new System.Net.DnsEndPoint(uri.Host, uri.Port));
                proxyRequest.RequestUri = new UriBuilder(uri) { Host = serverName }.Uri;
            }
        }
        if (CloseConnection)
        {
            proxyRequest.Headers.ConnectionClose = true;
        }
        if (route.IncludeAttemptCount)
        {
            proxyRequest.Headers.TryAddWithoutValidation("x-envoy-attempt-count", Number switch { 1 => "1", 2 => "2", 3 => "3", var n => n.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        }
        stream.Info.UpstreamRequestTimestamp = stream.Time.GetTimestamp();
    }

    public override async ValueTask<bool> TransformResponseAsync(HttpContext httpContext, HttpResponseMessage? proxyResponse, CancellationToken cancellationToken)
    {
        if (proxyResponse is null)
        {
            return await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        }
        stream.Info.UpstreamFirstByteTimestamp = stream.Time.GetTimestamp();
        var status = (int)proxyResponse.StatusCode;
        if (MayRetry && (Body is null || Body.CanReplay) && action.Retry is { } retry && (retry.RetriesStatus(status) || (retry.RetriesGrpc && retry.RetriesGrpcStatus(GrpcStatus(proxyResponse)))))
        {
            var (cluster, limits) = Budget;
            if (limits.AllowsRetry(cluster.ActiveRetries, cluster.ActiveRequests))
            {
                // Discarded unsent: YARP disposes the response and returns control for the next attempt.
                DiscardedStatus = status;
                httpContext.Response.StatusCode = StatusCodes.Status200OK;
                return false;
            }
            // The budget is spent: the client gets this response, and the record says why it was not retried.
            cluster.Stats.RetryOverflow.Increment();
            stream.Info.Flags |= ResponseFlags.UpstreamRetryLimitExceeded;
        }
        await base.TransformResponseAsync(httpContext, proxyResponse, cancellationToken).ConfigureAwait(false);
        // Envoy's router header: the upstream's time to its response headers, in ms (access logs read it back).
        var serviceTime = (long)stream.Time.GetElapsedTime(stream.Info.UpstreamRequestTimestamp, stream.Info.UpstreamFirstByteTimestamp).TotalMilliseconds;
        httpContext.Response.Headers["x-envoy-upstream-service-time"] = serviceTime.ToString(System.Globalization.CultureInfo.InvariantCulture);
        target.ResponseHeaders?.Apply(httpContext.Response.Headers, stream);
        stream.OnResponseHeaders();
        Forwarded = true;
        // The body YARP copies is exactly the upstream's: a declared length is the count; an undeclared one is counted
        // as YARP reads it. An upgrade (WebSocket, CONNECT) turns the content into a two-way tunnel: left alone.
        var grpc = Telemetry.Grpc.IsGrpc(proxyResponse.Content.Headers.ContentType?.MediaType);
        if (proxyResponse.Content.Headers.ContentLength is { } length && !grpc)
        {
            stream.Info.BytesSent = length;
        }
        else if (status != StatusCodes.Status101SwitchingProtocols && !HttpMethods.IsConnect(httpContext.Request.Method))
        {
            proxyResponse.Content = new CountedResponseContent(proxyResponse.Content, stream.Info, grpc);
        }
        return true;
    }

    /// <summary>grpc-status in the response headers (a trailers-only gRPC response), which is what gRPC retry conditions read.</summary>
    private static int? GrpcStatus(HttpResponseMessage response) =>
        response.Headers.NonValidated.TryGetValues("grpc-status", out var values) && values.Count > 0 && int.TryParse(values.ToString(), out var code) ? code : null;
}
