using System.Net;
using System.Net.Sockets;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Http;
using Bowline.Proxy.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.Extensions.Logging;
using Yarp.ReverseProxy.Forwarder;

namespace Bowline.Proxy.Filters.Http.Router;

/// <summary>
/// The terminal filter, Envoy's router: answers redirects and direct responses, then runs the upstream request loop —
/// pick a cluster by weight, a host by the balancer (away from hosts already tried), check the circuit breakers, send
/// with the per-try timeout inside the route timeout, and on a retriable outcome back off and try again while the
/// retry policy, the retry budget and the replay buffer allow. Every outcome is reported to the outlier detector and
/// written to the request record.
/// </summary>
internal sealed partial class RouterFilter(IHttpForwarder forwarder, Random random, TimeProvider time, ILogger<RouterFilter> logger) : IHttpFilter
{
    /// <summary>Envoy's default per-request buffer limit, the most of a body kept for a retry or a mirror.</summary>
    private const int BufferLimit = 1024 * 1024;

    private static readonly ForwarderRequestConfig Http1 = new() { Version = HttpVersion.Version11, VersionPolicy = HttpVersionPolicy.RequestVersionOrLower, ActivityTimeout = TimeSpan.FromHours(1) };
    private static readonly ForwarderRequestConfig Http2 = new() { Version = HttpVersion.Version20, VersionPolicy = HttpVersionPolicy.RequestVersionExact, ActivityTimeout = TimeSpan.FromHours(1) };

    public string Name => "envoy.filters.http.router";

    public async ValueTask<FilterStatus> OnRequestAsync(HttpStream stream)
    {
        var context = stream.Context;
        if (stream.Route is not { } route)
        {
            stream.Chain.Stats.NoRoute.Increment();
            await stream.SendLocalReplyAsync(StatusCodes.Status404NotFound, "", ResponseFlags.NoRouteFound, "route_not_found").ConfigureAwait(false);
            return FilterStatus.Stop;
        }
        switch (route.Kind)
        {
            case RouteKind.DirectResponse:
                await stream.SendLocalReplyAsync(route.DirectResponse!.Status, route.DirectResponse.Body, ResponseFlags.None, "direct_response").ConfigureAwait(false);
                return FilterStatus.Stop;
            case RouteKind.Redirect:
                Redirect(stream, route.Redirect!);
                await stream.SendLocalReplyAsync(route.Redirect!.Status, "", ResponseFlags.None, "redirect").ConfigureAwait(false);
                return FilterStatus.Stop;
        }
        if (!stream.Chain.WebSocket && IsWebSocketUpgrade(context))
        {
            await stream.SendLocalReplyAsync(StatusCodes.Status403Forbidden, "", ResponseFlags.None, "upgrade_failed").ConfigureAwait(false);
            return FilterStatus.Stop;
        }
        var action = route.Action!;
        var target = action.Pick(random);
        stream.Info.UpstreamCluster = target.ClusterName;
        if (target.Cluster.Current is null)
        {
            stream.Chain.Stats.NoCluster.Increment();
            await stream.SendLocalReplyAsync(StatusCodes.Status503ServiceUnavailable, "", ResponseFlags.NoClusterFound, "cluster_not_found").ConfigureAwait(false);
            return FilterStatus.Stop;
        }
        await ForwardAsync(stream, route, action, target).ConfigureAwait(false);
        return FilterStatus.Stop;
    }

    private async Task ForwardAsync(HttpStream stream, RouteEntry route, RouteAction action, WeightedTarget target)
    {
        var context = stream.Context;
        var cluster = target.Cluster;
        var retry = action.Retry;
        ulong? hash = null;
        if (action.HashPolicies.Length > 0)
        {
            hash = HashPolicy.Compute(action.HashPolicies, context, out var generated);
            if (generated is { } cookie)
            {
                SetCookie(context, cookie);
            }
        }
        var hasBody = context.Features.Get<IHttpRequestBodyDetectionFeature>()?.CanHaveBody == true && !IsUpgrade(context);
        var keepBody = hasBody && (retry is { NumRetries: > 0 } || action.Mirrors.Length > 0);
        var body = hasBody ? new UpstreamBody(context.Request.Body, keepBody ? BufferLimit : 0, Telemetry.Grpc.IsGrpc(context.Request.ContentType) ? stream.Info : null) : null;
        if (body is not null)
        {
            context.Request.Body = body;
        }

        var attempt = new UpstreamAttempt(stream, route, action, target) { Body = body };
        // A CancellationTokenSource only when the route has a timeout: the common case allocates none for it.
        using var routeTimeout = action.Timeout is { } limit ? new CancellationTokenSource(limit, time) : null;
        // Every host an attempt went to (Envoy's previous_hosts), allocated only when a request is retried.
        List<UpstreamEndpoint>? tried = null;
        UpstreamEndpoint? previousHost = null;
        try
        {
            if (action.Mirrors.Length > 0 && !hasBody)
            {
                Mirror.Send(context, action.Mirrors, null, random, time, logger);
            }
            for (var number = 1; ; number++)
            {
                var snapshot = cluster.Current;
                if (snapshot is null)
                {
                    await stream.SendLocalReplyAsync(StatusCodes.Status503ServiceUnavailable, "", ResponseFlags.NoClusterFound, "cluster_not_found").ConfigureAwait(false);
                    return;
                }
                stream.Info.UpstreamService = snapshot.Config.Service;
                if (previousHost is not null)
                {
                    (tried ??= []).Add(previousHost);
                }
                var host = PickHost(snapshot, hash, retry, tried, number);
                if (host is null)
                {
                    cluster.Stats.NoHealthyUpstream.Increment();
                    await stream.SendLocalReplyAsync(StatusCodes.Status503ServiceUnavailable, "no healthy upstream", ResponseFlags.NoHealthyUpstream, "no_healthy_upstream").ConfigureAwait(false);
                    return;
                }
                var isRetry = number > 1;
                if (!TryAdmit(snapshot, cluster, host, isRetry))
                {
                    cluster.Stats.PendingOverflow.Increment();
                    await stream.SendLocalReplyAsync(StatusCodes.Status503ServiceUnavailable, "upstream connect error or disconnect/reset before headers. reset reason: overflow",
                        ResponseFlags.UpstreamOverflow, "upstream_reset_before_response_started{overflow}").ConfigureAwait(false);
                    return;
                }
                previousHost = host;
                var retriesLeft = retry is not null && number <= retry.NumRetries;
                attempt.Number = number;
                attempt.MayRetry = retriesLeft && (body is null || body.CanReplay) && !IsUpgrade(context) && !(routeTimeout?.IsCancellationRequested ?? false);
                attempt.Budget = (cluster, snapshot.Config.Limits);
                // max_requests_per_connection 1: every request closes its connection. Above 1 the pool's connections
                // count their own requests (RequestLimitedStream), since which connection a request takes is the handler's.
                attempt.CloseConnection = snapshot.Config.MaxRequestsPerConnection == 1 && snapshot.Config.Protocol != UpstreamProtocol.Http2;
                attempt.Reset();
                stream.Info.Attempts = number;
                stream.Info.UpstreamHost = host;

                var outcome = await SendAsync(stream, snapshot, cluster, host, attempt, retry, routeTimeout, isRetry).ConfigureAwait(false);
                if (outcome.Kind == AttemptKind.Done)
                {
                    if (isRetry)
                    {
                        cluster.Stats.RetrySuccesses.Increment();
                    }
                    stream.Info.ResponseCode = context.Response.StatusCode;
                    stream.Info.ResponseCodeDetails = "via_upstream";
                    return;
                }
                if (outcome.Kind == AttemptKind.ClientGone)
                {
                    stream.Info.Flags |= ResponseFlags.DownstreamConnectionTermination;
                    stream.Info.ResponseCodeDetails = "downstream_remote_disconnect";
                    return;
                }

                // A discarded response is always retried (the transformer checked policy and budget before discarding it);
                // a failure is retried if the policy, the replay buffer, the time left and the retry budget allow.
                var canRetry = outcome.Discarded;
                if (!canRetry && retry is not null && outcome.Retriable)
                {
                    canRetry = retriesLeft && (body is null || body.CanReplay) && !context.Response.HasStarted && !(routeTimeout?.IsCancellationRequested ?? false);
                    if (canRetry && !snapshot.Config.Limits.AllowsRetry(cluster.ActiveRetries, cluster.ActiveRequests))
                    {
                        cluster.Stats.RetryOverflow.Increment();
                        stream.Info.Flags |= ResponseFlags.UpstreamRetryLimitExceeded;
                        canRetry = false;
                    }
                    else if (!retriesLeft && retry.NumRetries > 0)
                    {
                        cluster.Stats.RetryLimitExceeded.Increment();
                        stream.Info.Flags |= ResponseFlags.UpstreamRetryLimitExceeded;
                    }
                }
                if (!canRetry || routeTimeout?.IsCancellationRequested == true)
                {
                    await FailAsync(stream, outcome, routeTimeout?.IsCancellationRequested == true).ConfigureAwait(false);
                    return;
                }
                cluster.Stats.Retries.Increment();
                cluster.Stats.RetryBackoffExponential.Increment();
                ResetForRetry(stream, body);
                try
                {
                    // The backoff ends early if the client goes away or the route timeout fires.
                    using var wait = routeTimeout is null ? null : CancellationTokenSource.CreateLinkedTokenSource(routeTimeout.Token, context.RequestAborted);
                    await Task.Delay(retry!.Backoff(number, random), time, wait?.Token ?? context.RequestAborted).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    await FailAsync(stream, outcome, routeTimeout?.IsCancellationRequested == true).ConfigureAwait(false);
                    return;
                }
            }
        }
        finally
        {
            stream.Info.BytesReceived = body?.BytesRead ?? 0;
            if (body is { FullyBuffered: true } && action.Mirrors.Length > 0)
            {
                Mirror.Send(context, action.Mirrors, body.Buffered.ToArray(), random, time, logger);
            }
            body?.Dispose();
        }
    }

    private async Task<AttemptOutcome> SendAsync(HttpStream stream, ClusterSnapshot snapshot, ClusterState cluster, UpstreamEndpoint host, UpstreamAttempt attempt,
        RetryPolicy? retry, CancellationTokenSource? routeTimeout, bool isRetry)
    {
        var context = stream.Context;
        var config = snapshot.Config;
        var requestConfig = config.Protocol switch
        {
            UpstreamProtocol.Http2 => Http2,
            UpstreamProtocol.Downstream when HttpProtocol.IsHttp2(context.Request.Protocol) => Http2,
            _ => Http1,
        };
        // The cluster's and the host's active counts were raised by TryAdmit; they are lowered below.
        cluster.Stats.RequestsTotal.Increment();
        // One timer per attempt at most: the per-try source also fires when the route timeout does (checked first below).
        using var perTry = retry?.PerTryTimeout is { } perTryLimit ? new CancellationTokenSource(perTryLimit, time) : null;
        using var routeFired = perTry is not null && routeTimeout is not null
            ? routeTimeout.Token.UnsafeRegister(static source => ((CancellationTokenSource)source!).Cancel(), perTry)
            : default;
        var token = perTry?.Token ?? routeTimeout?.Token;
        attempt.Tls = config.Transport is null ? null : snapshot.Hosts.TlsOf(host, config.Transport.Unlabelled);
        ForwarderError error;
        var pool = config.Invoker;
        pool.Enter();
        try
        {
            error = token is { } t
                ? await forwarder.SendAsync(context, host.Prefix, config.Invoker, requestConfig, attempt, t).ConfigureAwait(false)
                : await forwarder.SendAsync(context, host.Prefix, config.Invoker, requestConfig, attempt).ConfigureAwait(false);
        }
        finally
        {
            pool.Exit();
            host.RequestEnded();
            cluster.RequestEnded(isRetry);
        }

        var detector = cluster.OutlierDetector;
        if (error == ForwarderError.None && attempt.DiscardedStatus is { } discarded)
        {
            cluster.Stats.CountResponse(discarded);
            detector?.Report(host, Classify(discarded));
            return new AttemptOutcome(AttemptKind.Failed, true, discarded, ResponseFlags.None, "via_upstream") { Discarded = true };
        }
        if (error == ForwarderError.None)
        {
            var status = context.Response.StatusCode;
            cluster.Stats.CountResponse(status);
            detector?.Report(host, Classify(status));
            return new AttemptOutcome(AttemptKind.Done, false, status, ResponseFlags.None, null);
        }

        var exception = context.Features.Get<IForwarderErrorFeature>()?.Exception;
        if (attempt.Forwarded && error is ForwarderError.RequestBodyDestination or ForwarderError.RequestBodyCanceled or ForwarderError.RequestBodyClient)
        {
            // The upstream answered before reading the whole upload (a 401 or 413); the response went out whole.
            cluster.Stats.CountResponse(context.Response.StatusCode);
            detector?.Report(host, Classify(context.Response.StatusCode));
            return new AttemptOutcome(AttemptKind.Done, false, context.Response.StatusCode, ResponseFlags.None, null);
        }
        stream.Info.UpstreamTransportFailureReason = exception?.Message;
        if (routeTimeout?.IsCancellationRequested == true)
        {
            cluster.Stats.Timeouts.Increment();
            detector?.Report(host, UpstreamOutcome.LocalOriginFailure);
            LogUpstreamFailure(cluster, host, "UT", "route timeout");
            return new AttemptOutcome(AttemptKind.Failed, false, StatusCodes.Status504GatewayTimeout, ResponseFlags.UpstreamRequestTimeout, "upstream_response_timeout");
        }
        if (perTry?.IsCancellationRequested == true)
        {
            cluster.Stats.PerTryTimeouts.Increment();
            detector?.Report(host, UpstreamOutcome.LocalOriginFailure);
            LogUpstreamFailure(cluster, host, "UT", "per-try timeout");
            return new AttemptOutcome(AttemptKind.Failed, retry!.RetriesPerTryTimeout, StatusCodes.Status504GatewayTimeout, ResponseFlags.UpstreamRequestTimeout, "upstream_per_try_timeout");
        }
        // Our own timeouts are told apart first: when an upstream fails mid-body YARP resets the client itself, so
        // RequestAborted alone does not mean the client left.
        if (context.RequestAborted.IsCancellationRequested && error is not (ForwarderError.Request or ForwarderError.ResponseHeaders or ForwarderError.ResponseBodyDestination))
        {
            return new AttemptOutcome(AttemptKind.ClientGone, false, 0, ResponseFlags.DownstreamConnectionTermination, null);
        }
        switch (error)
        {
            case ForwarderError.RequestCanceled or ForwarderError.RequestBodyCanceled or ForwarderError.ResponseBodyCanceled
                or ForwarderError.RequestBodyClient or ForwarderError.ResponseBodyClient or ForwarderError.UpgradeRequestCanceled
                or ForwarderError.UpgradeResponseCanceled or ForwarderError.UpgradeRequestClient or ForwarderError.UpgradeResponseClient:
                return new AttemptOutcome(AttemptKind.ClientGone, false, 0, ResponseFlags.DownstreamConnectionTermination, null);
            case ForwarderError.Request when IsConnectFailure(exception):
                cluster.Stats.ConnectFailures.Increment();
                detector?.Report(host, UpstreamOutcome.LocalOriginFailure);
                LogUpstreamFailure(cluster, host, "UF", exception?.InnerException?.Message ?? exception?.Message ?? "");
                return new AttemptOutcome(AttemptKind.Failed, retry?.RetriesConnectFailure ?? false, StatusCodes.Status503ServiceUnavailable, ResponseFlags.UpstreamConnectionFailure,
                    "upstream_reset_before_response_started{connection_failure}");
            case ForwarderError.RequestTimedOut when exception?.InnerException is TimeoutException || exception is TaskCanceledException { InnerException: TimeoutException }:
                // SocketsHttpHandler's ConnectTimeout: a connect failure, retried and counted as one.
                cluster.Stats.ConnectFailures.Increment();
                detector?.Report(host, UpstreamOutcome.LocalOriginFailure);
                return new AttemptOutcome(AttemptKind.Failed, retry?.RetriesConnectFailure ?? false, StatusCodes.Status503ServiceUnavailable, ResponseFlags.UpstreamConnectionFailure,
                    "upstream_reset_before_response_started{connection_timeout}");
            case ForwarderError.RequestTimedOut:
                cluster.Stats.Timeouts.Increment();
                detector?.Report(host, UpstreamOutcome.LocalOriginFailure);
                return new AttemptOutcome(AttemptKind.Failed, retry?.RetriesPerTryTimeout ?? false, StatusCodes.Status504GatewayTimeout, ResponseFlags.UpstreamRequestTimeout, "upstream_response_timeout");
            default:
                cluster.Stats.Resets.Increment();
                detector?.Report(host, UpstreamOutcome.LocalOriginFailure);
                LogUpstreamFailure(cluster, host, "UR", error, exception);
                var refused = IsRefusedStream(exception);
                return new AttemptOutcome(AttemptKind.Failed, refused ? retry?.RetriesRefusedStream ?? false : retry?.RetriesReset ?? false,
                    StatusCodes.Status503ServiceUnavailable, ResponseFlags.UpstreamRemoteReset,
                    refused ? "upstream_reset_before_response_started{remote_refused_stream_reset}" : "upstream_reset_before_response_started{remote_reset}");
        }
    }

    /// <summary>
    /// The local reply after the last attempt failed. A route timeout that fired (during an attempt or a backoff) is a
    /// 504 UT; a discarded response never reaches here otherwise, since a response is discarded only for a retry.
    /// </summary>
    private static Task FailAsync(HttpStream stream, AttemptOutcome outcome, bool routeTimedOut)
    {
        if (routeTimedOut)
        {
            return stream.SendLocalReplyAsync(StatusCodes.Status504GatewayTimeout, "upstream request timeout", ResponseFlags.UpstreamRequestTimeout, "upstream_response_timeout");
        }
        if (outcome.Discarded || outcome.Flags == ResponseFlags.None || stream.Context.RequestAborted.IsCancellationRequested)
        {
            return Task.CompletedTask;
        }
        var body = outcome.Flags switch
        {
            ResponseFlags.UpstreamRequestTimeout => "upstream request timeout",
            ResponseFlags.UpstreamConnectionFailure => "upstream connect error or disconnect/reset before headers. reset reason: connection failure",
            _ => "upstream connect error or disconnect/reset before headers. reset reason: remote reset",
        };
        return stream.SendLocalReplyAsync(outcome.Status, body, outcome.Flags, outcome.Details ?? "upstream_reset_before_response_started");
    }

    /// <summary>
    /// The balancer's pick, re-selected (up to the policy's host_selection_retry_max_attempts) when it lands on a host an
    /// earlier attempt of this request went to, so a retry moves to another host whenever there is one.
    /// </summary>
    private static UpstreamEndpoint? PickHost(ClusterSnapshot snapshot, ulong? hash, RetryPolicy? retry, List<UpstreamEndpoint>? tried, int number)
    {
        var balancer = snapshot.Config.Balancer;
        var avoid = tried is not null && retry is { AvoidPreviousHosts: true };
        var excluded = tried is not null && retry is { PriorityUpdateFrequency: > 0 and var frequency } ? ExcludedLevels(snapshot.Hosts, tried, frequency) : 0;
        // Without the predicate a retry may go to the same host; a hashing balancer then keeps the request's key as is.
        var host = balancer.Pick(snapshot.Hosts, hash, avoid ? number - 1 : 0, excluded);
        for (var i = 0; avoid && host is not null && tried!.Contains(host) && i < retry!.HostSelectionMaxAttempts; i++)
        {
            host = balancer.Pick(snapshot.Hosts, hash, number + i, excluded);
        }
        return host;
    }

    /// <summary>
    /// Envoy's previous_priorities: the priority levels of the attempts made before the last multiple of
    /// <paramref name="frequency"/> are left out of the priority load, so a retry goes to the next locality.
    /// </summary>
    private static ulong ExcludedLevels(HostSet hosts, List<UpstreamEndpoint> tried, int frequency)
    {
        var counted = tried.Count / frequency * frequency;
        var excluded = 0UL;
        for (var i = 0; i < counted; i++)
        {
            if (hosts.LevelOf(tried[i]) is >= 0 and < 64 and var level)
            {
                excluded |= 1UL << level;
            }
        }
        return excluded;
    }

    /// <summary>
    /// Envoy's circuit breakers: max_requests over the cluster, and for HTTP/1.1 a host's connections plus its pending
    /// queue. The slot is taken first and checked after, so concurrent requests can never all pass a check that none
    /// has counted yet; an overflowing request gives its slot back at once.
    /// </summary>
    private static bool TryAdmit(ClusterSnapshot snapshot, ClusterState cluster, UpstreamEndpoint host, bool isRetry)
    {
        var limits = snapshot.Config.Limits;
        var clusterActive = cluster.RequestStarted(isRetry);
        var hostActive = host.RequestStarted();
        if (clusterActive <= limits.MaxRequests
            && (snapshot.Config.Protocol == UpstreamProtocol.Http2 || hostActive <= (long)limits.MaxConnections + limits.MaxPendingRequests))
        {
            return true;
        }
        host.RequestEnded();
        cluster.RequestEnded(isRetry);
        return false;
    }

    private static void ResetForRetry(HttpStream stream, UpstreamBody? body)
    {
        var context = stream.Context;
        context.Response.Clear();
        stream.ResponseCleared();
        context.Features.Set<IForwarderErrorFeature>(null);
        body?.Rewind();
    }

    private static UpstreamOutcome Classify(int status) => status switch
    {
        502 or 503 or 504 => UpstreamOutcome.GatewayError,
        >= 500 => UpstreamOutcome.ServerError,
        _ => UpstreamOutcome.Success,
    };

    /// <summary>Envoy's generated hash cookie: the client keeps it, so its next requests hash to the same host.</summary>
    private static void SetCookie(HttpContext context, (string Name, string Value, TimeSpan Ttl, string? Path) cookie) =>
        context.Response.Cookies.Append(cookie.Name, cookie.Value, new CookieOptions { MaxAge = cookie.Ttl > TimeSpan.Zero ? cookie.Ttl : null, Path = cookie.Path, HttpOnly = true });

    private static void Redirect(HttpStream stream, RedirectAction redirect)
    {
        var request = stream.Context.Request;
        var scheme = redirect.Scheme ?? request.Scheme;
        var host = redirect.Host ?? request.Host.Host;
        var port = redirect.Port ?? (redirect.Host is null && redirect.Scheme is null ? request.Host.Port : null);
        var path = request.Path.Value ?? "/";
        if (redirect.Path is { } replaced)
        {
            path = replaced;
        }
        else if (redirect.PrefixRewrite is { } prefix && stream.Route?.MatchedPrefix is { } matched && path.StartsWith(matched, StringComparison.OrdinalIgnoreCase))
        {
            path = prefix + path[matched.Length..];
        }
        else if (redirect.RegexRewrite is var (pattern, substitution))
        {
            path = pattern.Replace(path, substitution);
        }
        var query = redirect.StripQuery || path.Contains('?', StringComparison.Ordinal) ? "" : request.QueryString.Value;
        var defaultPort = scheme == "https" ? 443 : 80;
        var authority = port is { } p && p != defaultPort ? $"{host}:{p}" : host;
        // Added through the stream: the local reply that follows clears the response first.
        stream.AddResponseHeader("location", $"{scheme}://{authority}{new PathString(path).ToUriComponent()}{query}");
    }

    private static bool IsUpgrade(HttpContext context) => context.Features.Get<IHttpUpgradeFeature>()?.IsUpgradableRequest == true;

    /// <summary>An HTTP/1.1 <c>Upgrade: websocket</c> (no WebSocket middleware runs here, so the raw upgrade feature is read).</summary>
    private static bool IsWebSocketUpgrade(HttpContext context) =>
        IsUpgrade(context) && context.Request.Headers.Upgrade.ToString().Contains("websocket", StringComparison.OrdinalIgnoreCase);

    private static bool IsConnectFailure(Exception? exception) => exception switch
    {
        HttpRequestException { HttpRequestError: HttpRequestError.ConnectionError } => true,
        HttpRequestException { InnerException: SocketException } => true,
        // A refused upstream TLS handshake is a connection failure to Envoy (UF, with the TLS error as the reason).
        HttpRequestException { HttpRequestError: HttpRequestError.SecureConnectionError } => true,
        HttpRequestException { InnerException: System.Security.Authentication.AuthenticationException } => true,
        _ => false,
    };

    private static bool IsRefusedStream(Exception? exception)
    {
        for (var e = exception; e is not null; e = e.InnerException)
        {
            if (e is HttpProtocolException { ErrorCode: 0x7 })
            {
                return true;
            }
        }
        return false;
    }

    /// <summary>At most one line per cluster every few seconds: an outage at 1,000 rps must not become 1,000 log lines a second (the counters count every one).</summary>
    private void LogUpstreamFailure(ClusterState cluster, UpstreamEndpoint endpoint, string flag, string reason)
    {
        if (cluster.Stats.ShouldLog(time.GetTimestamp(), time.TimestampFrequency))
        {
            LogUpstreamFailure(logger, cluster.Name, endpoint.ToString(), flag, reason);
        }
    }

    /// <summary>The reason string is built only when the line is written.</summary>
    private void LogUpstreamFailure(ClusterState cluster, UpstreamEndpoint endpoint, string flag, ForwarderError error, Exception? exception)
    {
        if (cluster.Stats.ShouldLog(time.GetTimestamp(), time.TimestampFrequency))
        {
            LogUpstreamFailure(logger, cluster.Name, endpoint.ToString(), flag, $"{error}: {exception?.Message}");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "upstream {Cluster} endpoint {Endpoint} failed ({Flag}): {Reason}; further failures of this cluster are counted in its stats and logged at most every 5 s")]
    private static partial void LogUpstreamFailure(ILogger logger, string cluster, string endpoint, string flag, string reason);

    private enum AttemptKind
    {
        Done,
        Failed,
        ClientGone,
    }

    private readonly record struct AttemptOutcome(AttemptKind Kind, bool Retriable, int Status, ResponseFlags Flags, string? Details)
    {
        /// <summary>The upstream answered with a retriable response that was discarded unsent.</summary>
        public bool Discarded { get; init; }
    }
}
