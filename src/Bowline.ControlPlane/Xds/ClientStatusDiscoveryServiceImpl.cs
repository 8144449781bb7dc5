using System.Net;
using Envoy.Admin.V3;
using Envoy.Service.Status.V3;
using Grpc.Core;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// Envoy's Client Status Discovery Service (CSDS), what <c>istioctl proxy-status</c> reads: per connected proxy and
/// xDS type, the version it ACKed, whether it is SYNCED, STALE, NOT_SENT or in ERROR (it NACKed the version it was
/// sent, with the reason). It reveals the whole mesh's inventory, so it answers loopback callers only, as the
/// monitoring port's debug endpoints are meant for the operator's machine.
/// </summary>
internal sealed class ClientStatusDiscoveryServiceImpl(ConnectedProxies proxies) : ClientStatusDiscoveryService.ClientStatusDiscoveryServiceBase
{
    public override Task<ClientStatusResponse> FetchClientStatus(ClientStatusRequest request, ServerCallContext context)
    {
        RequireLoopback(context);
        return Task.FromResult(Status(request));
    }

    public override async Task StreamClientStatus(IAsyncStreamReader<ClientStatusRequest> requestStream, IServerStreamWriter<ClientStatusResponse> responseStream, ServerCallContext context)
    {
        RequireLoopback(context);
        while (await requestStream.MoveNext(context.CancellationToken).ConfigureAwait(false))
        {
            await responseStream.WriteAsync(Status(requestStream.Current)).ConfigureAwait(false);
        }
    }

    private ClientStatusResponse Status(ClientStatusRequest request)
    {
        var response = new ClientStatusResponse();
        foreach (var proxy in proxies.All.Where(p => Matches(request, p.Node.Id)))
        {
            var config = new ClientConfig { Node = new Envoy.Config.Core.V3.Node { Id = proxy.Node.Id } };
            foreach (var (_, type) in proxy.Types.OrderBy(t => t.Key, StringComparer.Ordinal))
            {
                var xds = new ClientConfig.Types.GenericXdsConfig
                {
                    TypeUrl = type.TypeUrl,
                    VersionInfo = type.Acked ?? "",
                    ConfigStatus = type.Sent is null ? ConfigStatus.NotSent : type.Synced ? ConfigStatus.Synced : type.Nacked ? ConfigStatus.Error : ConfigStatus.Stale,
                    ClientStatus = type.Nacked ? ClientResourceStatus.Nacked : type.Acked is not null ? ClientResourceStatus.Acked : ClientResourceStatus.Requested,
                };
                if (type.Nacked)
                {
                    xds.ErrorState = new UpdateFailureState { Details = type.RejectReason ?? "", VersionInfo = type.Rejected ?? "" };
                }
                config.GenericXdsConfigs.Add(xds);
            }
            response.Config.Add(config);
        }
        return response;
    }

    /// <summary>A request's node matchers select by node id (exact or prefix); none selects every proxy.</summary>
    private static bool Matches(ClientStatusRequest request, string id) =>
        request.NodeMatchers.Count == 0 || request.NodeMatchers.Any(m => m.NodeId is not { } matcher
            || (matcher.MatchPatternCase == Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Exact && matcher.Exact == id)
            || (matcher.MatchPatternCase == Envoy.Type.Matcher.V3.StringMatcher.MatchPatternOneofCase.Prefix && id.StartsWith(matcher.Prefix, StringComparison.Ordinal)));

    private static void RequireLoopback(ServerCallContext context)
    {
        var remote = context.GetHttpContext().Connection.RemoteIpAddress;
        if (remote is null || !IPAddress.IsLoopback(remote))
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.PermissionDenied, "client status is served to loopback callers only: it lists every proxy of the mesh"));
        }
    }
}
