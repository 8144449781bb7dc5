using Bowline.ControlPlane.Snapshots;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// Envoy's Aggregated Discovery Service. State of the world is served; the delta variant answers UNIMPLEMENTED, so a
/// client that prefers delta (Envoy with <c>api_type: DELTA_GRPC</c>) gets a clear refusal instead of a silent hang.
/// </summary>
internal sealed class AggregatedDiscoveryServiceImpl(MeshState mesh, ConnectedProxies proxies, XdsAuthenticator authenticator, IHostApplicationLifetime lifetime, ILogger<AggregatedDiscoveryServiceImpl> logger)
    : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
{
    public override async Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context)
    {
        // Before anything is read: on the TLS port a client without a valid mesh certificate learns nothing.
        var authorization = authenticator.Authenticate(context, "ADS");
        // Streams live as long as the proxy; on shutdown they end so clients reconnect elsewhere instead of holding the server open.
        using var stream = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, lifetime.ApplicationStopping);
        try
        {
            await new AdsStream(requestStream, responseStream, mesh, proxies, logger) { Authorization = authorization }.RunAsync(context.Peer, stream.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested)
        {
        }
        finally
        {
            // Ends the stream's pending wait on the mesh now, rather than at the next config change.
            await stream.CancelAsync().ConfigureAwait(false);
        }
    }

    public override Task DeltaAggregatedResources(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, "Bowline serves state-of-the-world ADS only for now; configure the client with api_type GRPC"));
}
