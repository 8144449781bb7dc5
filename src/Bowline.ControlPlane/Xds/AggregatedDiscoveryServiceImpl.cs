using Bowline.ControlPlane.Snapshots;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// Envoy's Aggregated Discovery Service. State of the world is served; the delta variant answers UNIMPLEMENTED, so a
/// client that prefers delta (Envoy with <c>api_type: DELTA_GRPC</c>) gets a clear refusal instead of a silent hang.
/// </summary>
internal sealed class AggregatedDiscoveryServiceImpl(MeshState mesh, ConnectedProxies proxies, ILogger<AggregatedDiscoveryServiceImpl> logger)
    : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
{
    public override Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context) =>
        new AdsStream(requestStream, responseStream, mesh, proxies, logger).RunAsync(context.Peer, context.CancellationToken);

    public override Task DeltaAggregatedResources(IAsyncStreamReader<DeltaDiscoveryRequest> requestStream, IServerStreamWriter<DeltaDiscoveryResponse> responseStream, ServerCallContext context) =>
        throw new RpcException(new Status(StatusCode.Unimplemented, "Bowline serves state-of-the-world ADS only for now; configure the client with api_type GRPC"));
}
