using Bowline.Proxy.Http;
using Bowline.Proxy.Telemetry;

namespace Bowline.Proxy.Filters.Http.PeerMetadata;

/// <summary>
/// Metadata exchange per request. Inbound (downstream discovery and propagation): the client sidecar's metadata is
/// taken off the request, believed only when its mTLS identity vouches for it, and this workload's is put on the
/// response for a mesh client. Outbound (upstream propagation and discovery): this workload's metadata goes on the
/// request, the server's comes off the response, believed only when the identity the server proved vouches for it.
/// The headers never reach an app in either direction, so an app can neither read nor forge them.
/// </summary>
internal sealed class PeerMetadataFilter(string name, LocalWorkload local, bool downstreamDiscovery, bool upstreamDiscovery, bool downstreamPropagation, bool upstreamPropagation)
    : IHttpFilter, IHttpResponseFilter
{
    public string Name { get; } = name;

    public ValueTask<FilterStatus> OnRequestAsync(HttpStream stream)
    {
        var headers = stream.Context.Request.Headers;
        if (downstreamDiscovery)
        {
            if (headers.TryGetValue(WorkloadMetadata.HeaderName, out var value) && WorkloadMetadata.Decode(value.ToString()) is { } peer
                && peer.IsVouchedFor(stream.Connection?.Peer?.Spiffe))
            {
                stream.Info.DownstreamPeer = peer;
            }
            headers.Remove(WorkloadMetadata.HeaderName);
            headers.Remove(WorkloadMetadata.IdHeaderName);
        }
        if (upstreamPropagation)
        {
            headers[WorkloadMetadata.HeaderName] = local.Header;
            headers[WorkloadMetadata.IdHeaderName] = local.HeaderId;
        }
        if (upstreamDiscovery || downstreamPropagation)
        {
            stream.AddResponseFilter(this);
        }
        return ValueTask.FromResult(FilterStatus.Continue);
    }

    public void OnResponseHeaders(HttpStream stream)
    {
        var headers = stream.Context.Response.Headers;
        if (upstreamDiscovery)
        {
            if (headers.TryGetValue(WorkloadMetadata.HeaderName, out var value) && WorkloadMetadata.Decode(value.ToString()) is { } peer
                && peer.IsVouchedFor(stream.Info.UpstreamHost?.PeerIdentity))
            {
                stream.Info.UpstreamPeer = peer;
            }
            headers.Remove(WorkloadMetadata.HeaderName);
            headers.Remove(WorkloadMetadata.IdHeaderName);
        }
        if (downstreamPropagation)
        {
            // Only a mesh client (a verified SPIFFE identity) is told who served it; anyone else learns nothing.
            if (stream.Connection?.Peer?.Spiffe is not null)
            {
                headers[WorkloadMetadata.HeaderName] = local.Header;
                headers[WorkloadMetadata.IdHeaderName] = local.HeaderId;
            }
            else
            {
                headers.Remove(WorkloadMetadata.HeaderName);
                headers.Remove(WorkloadMetadata.IdHeaderName);
            }
        }
    }
}
