using Bowline.Proxy.Configuration;
using Bowline.Proxy.Stats;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Http;

/// <summary>
/// The life of a request on a listener (Envoy's HTTP connection manager): pick the chain by local port, match the
/// route once, then run the chain's filters in order until one answers or the router (always last) has forwarded the
/// request. Afterwards the request record is complete and the chain's stats are counted from it; the filters and
/// the router never count downstream stats themselves.
/// </summary>
internal sealed class HttpConnectionManager(ProxyStats stats, TimeProvider time)
{
    private readonly Stat[] _flagStats = [.. ResponseFlagCodes.All.Select(f => stats.Get($"bowline.response_flags.{f.Code}"))];
    private readonly Stat _prematureResetClosures = stats.Get("http.downstream_rq_too_many_premature_resets");
    private readonly Stat _alreadyReset = stats.Get("http.downstream_rq_reset_before_processing");

    /// <summary>
    /// Handles one request on <paramref name="listener"/>: the compiled listener of the snapshot its server was last
    /// given (the xDS loop hands every running server its new version on each swap, and a draining server keeps its last).
    /// </summary>
    public async Task HandleAsync(HttpContext context, CompiledListener listener)
    {
        var connection = context.Features.Get<Listeners.ConnectionChain>();
        var chain = connection is not null ? connection.Resolve(listener)?.Http : listener.ChainFor(context.Connection.LocalPort);
        if (chain is null && connection is not null)
        {
            // A listener update left this connection without a chain (STRICT mTLS now refuses its plaintext): close it.
            context.Abort();
            return;
        }
        if (chain is null)
        {
            Count(ResponseFlags.NoRouteFound);
            context.Response.StatusCode = StatusCodes.Status404NotFound;
            context.Response.Headers[ResponseFlagCodes.Header] = "NR";
            return;
        }
        var guard = HttpProtocol.IsHttp2(context.Request.Protocol) ? PrematureResetGuard.Of(context) : null;
        if (context.RequestAborted.IsCancellationRequested)
        {
            // The client reset the stream before it got here: nothing is started upstream for it.
            _alreadyReset.Increment();
            if (guard?.Record(resetEarly: true) == true)
            {
                _prematureResetClosures.Increment();
            }
            return;
        }
        var stream = new HttpStream(context, chain, time);
        stream.Info.StartTimestamp = time.GetTimestamp();
        stream.Info.StartTime = time.GetUtcNow();
        chain.Stats.RequestsTotal.Increment();
        try
        {
            chain.ClientCerts.Apply(stream);
            if (chain.GenerateRequestId && !context.Request.Headers.ContainsKey("x-request-id"))
            {
                // Envoy's generate_request_id: once per request, on the request itself, so every attempt, mirror,
                // filter and the access log see the same id, and it travels end to end.
                context.Request.Headers["x-request-id"] = RequestIds.Next();
            }
            chain.Tracing?.Begin(stream);
            if (await NormalizePathAsync(stream).ConfigureAwait(false))
            {
                return;
            }
            stream.ResolveRoute();
            // Only a route or virtual host with per-filter config can switch a filter on or off.
            var overridable = stream.Route?.FilterConfigs is not null || stream.VirtualHost?.FilterConfigs is not null;
            foreach (var entry in chain.Filters)
            {
                if ((overridable || entry.DisabledByDefault) && !stream.IsEnabled(entry.Filter.Name, entry.DisabledByDefault))
                {
                    continue;
                }
                if (await entry.Filter.OnRequestAsync(stream).ConfigureAwait(false) == Filters.Http.FilterStatus.Stop)
                {
                    break;
                }
            }
        }
        finally
        {
            var info = stream.Info;
            info.EndTimestamp = time.GetTimestamp();
            if (info.ResponseCode == 0)
            {
                info.ResponseCode = context.RequestAborted.IsCancellationRequested ? 0 : context.Response.StatusCode;
            }
            if (context.RequestAborted.IsCancellationRequested)
            {
                info.Flags |= ResponseFlags.DownstreamConnectionTermination;
            }
            chain.Stats.Completed(info.ResponseCode == 0 ? 499 : info.ResponseCode);
            Count(info.Flags);
            foreach (var observer in chain.Observers)
            {
                observer.OnStreamComplete(stream);
            }
            chain.Tracing?.End(stream);
            if (chain.AccessLogs.Length > 0)
            {
                AccessLogs.AccessLogger.LogAll(chain.AccessLogs, AccessLogs.AccessLogInput.Of(stream));
            }
            // Envoy's premature reset: the client reset a stream it got no response on, within a second of opening it.
            var premature = context.RequestAborted.IsCancellationRequested && !context.Response.HasStarted
                && info.EndTimestamp - info.StartTimestamp < time.TimestampFrequency;
            if (guard?.Record(resetEarly: premature) == true)
            {
                _prematureResetClosures.Increment();
            }
        }
    }

    /// <summary>Normalizes the path before anything matches on it; true when the request was answered (refused or redirected).</summary>
    private static async ValueTask<bool> NormalizePathAsync(HttpStream stream)
    {
        var request = stream.Context.Request;
        switch (stream.Chain.Paths.Apply(request))
        {
            case PathNormalization.Verdict.Reject:
                await stream.SendLocalReplyAsync(StatusCodes.Status400BadRequest, "Bad Request", ResponseFlags.None, "path_normalization_failed").ConfigureAwait(false);
                return true;
            case PathNormalization.Verdict.Redirect:
                stream.AddResponseHeader("location", request.Path.ToUriComponent() + request.QueryString.Value);
                await stream.SendLocalReplyAsync(StatusCodes.Status307TemporaryRedirect, "", ResponseFlags.None, "path_normalization_redirect").ConfigureAwait(false);
                return true;
            default:
                return false;
        }
    }

    private void Count(ResponseFlags flags)
    {
        if (flags == ResponseFlags.None)
        {
            return;
        }
        var all = ResponseFlagCodes.All;
        for (var i = 0; i < all.Count; i++)
        {
            if ((flags & all[i].Flag) != 0)
            {
                _flagStats[i].Increment();
            }
        }
    }
}
