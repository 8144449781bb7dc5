using Bowline.Proxy.Routing;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Filters.Http.Router;

/// <summary>
/// Envoy's request mirroring: a fire-and-forget copy of the request to the mirror cluster, with <c>-shadow</c>
/// appended to the authority. The primary never waits for it, and its failure or latency never touches the primary
/// response; failures are counted on the mirror cluster's stats. A request whose body went past the buffer limit is
/// not mirrored.
/// </summary>
internal static partial class Mirror
{
    private static readonly HashSet<string> HopByHop = new(StringComparer.OrdinalIgnoreCase)
    {
        "Connection", "Keep-Alive", "Proxy-Connection", "TE", "Trailer", "Transfer-Encoding", "Upgrade", "Host", "Content-Length",
    };

    /// <summary>How long a mirrored request may take before it is abandoned; the primary never waits for it.</summary>
    private static readonly TimeSpan MirrorTimeout = TimeSpan.FromSeconds(30);

    public static void Send(HttpContext context, MirrorPolicy[] mirrors, byte[]? body, Random random, TimeProvider time, ILogger logger)
    {
        foreach (var mirror in mirrors)
        {
            if (mirror.PerMillion < 1_000_000 && random.Next(1_000_000) >= mirror.PerMillion)
            {
                continue;
            }
            if (mirror.Cluster.Current is not { } snapshot || snapshot.Config.Balancer.Pick(snapshot.Hosts, null, 0) is not { } host)
            {
                mirror.Cluster.Stats.NoHealthyUpstream.Increment();
                continue;
            }
            var request = Build(context, host.Prefix, body, snapshot.Config.Protocol == Clusters.UpstreamProtocol.Http2);
            _ = SendAsync(mirror, snapshot, host, request, time, logger);
        }
    }

    private static HttpRequestMessage Build(HttpContext context, string prefix, byte[]? body, bool http2)
    {
        var source = context.Request;
        var request = new HttpRequestMessage(new HttpMethod(source.Method), prefix + source.Path.ToUriComponent() + source.QueryString.ToUriComponent())
        {
            // The mirror cluster's protocol: an h2c-only (gRPC) mirror cannot be spoken to in HTTP/1.1.
            Version = http2 ? System.Net.HttpVersion.Version20 : System.Net.HttpVersion.Version11,
            VersionPolicy = http2 ? HttpVersionPolicy.RequestVersionExact : HttpVersionPolicy.RequestVersionOrLower,
        };
        if (body is { Length: > 0 })
        {
            request.Content = new ByteArrayContent(body);
        }
        foreach (var (name, values) in source.Headers)
        {
            if (HopByHop.Contains(name) || name.StartsWith(':'))
            {
                continue;
            }
            if (!request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values))
            {
                request.Content?.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
            }
        }
        var authority = source.Host;
        request.Headers.Host = authority.Port is { } port ? $"{authority.Host}-shadow:{port}" : $"{authority.Host}-shadow";
        return request;
    }

    private static async Task SendAsync(MirrorPolicy mirror, Clusters.ClusterSnapshot snapshot, Clusters.UpstreamEndpoint host, HttpRequestMessage request, TimeProvider time, ILogger logger)
    {
        try
        {
            // The primary's cancellation must not cancel its mirror, nor the mirror hold the primary: its own timeout.
            using var timeout = new CancellationTokenSource(MirrorTimeout, time);
            using var response = await Clusters.ClusterHttpHandler.SendToHostAsync(mirror.Cluster, snapshot, host, request, timeout.Token).ConfigureAwait(false);
        }
        catch (Exception e) when (e is HttpRequestException or OperationCanceledException or IOException)
        {
            LogMirrorFailed(logger, mirror.Cluster.Name, e.Message);
        }
        finally
        {
            request.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "mirror to {Cluster} failed: {Reason}")]
    private static partial void LogMirrorFailed(ILogger logger, string cluster, string reason);
}
