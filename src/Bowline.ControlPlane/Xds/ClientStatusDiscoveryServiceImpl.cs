using System.Net;
using Envoy.Admin.V3;
using Envoy.Service.Status.V3;
using Grpc.Core;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// Envoy's Client Status Discovery Service (CSDS), what <c>istioctl proxy-status</c> reads: per connected proxy and
/// xDS type, the version it ACKed, whether it is SYNCED, STALE, NOT_SENT or in ERROR (it NACKed the version it was
/// sent, with the reason). It reveals the whole mesh's inventory, so it is served, as istiod serves its debug
/// types, only to the control plane's own namespace: on the TLS port to a verified certificate of an identity in
/// <c>istio-system</c>, whatever address it comes from (a local forwarder, a sidecar in front of the control plane, or
/// a port-forward makes every caller look like loopback); on the plaintext port, which proves no one, to loopback
/// callers, as the monitoring port's debug endpoints are meant for the operator's machine.
/// </summary>
internal sealed class ClientStatusDiscoveryServiceImpl(ConnectedProxies proxies, XdsAuthenticator authenticator) : ClientStatusDiscoveryService.ClientStatusDiscoveryServiceBase
{
    public override Task<ClientStatusResponse> FetchClientStatus(ClientStatusRequest request, ServerCallContext context)
    {
        Authorize(context);
        return Task.FromResult(Status(request));
    }

    public override async Task StreamClientStatus(IAsyncStreamReader<ClientStatusRequest> requestStream, IServerStreamWriter<ClientStatusResponse> responseStream, ServerCallContext context)
    {
        Authorize(context);
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

    private void Authorize(ServerCallContext context)
    {
        // Throws UNAUTHENTICATED on the TLS port without a valid mesh certificate.
        if (authenticator.Authenticate(context, "CSDS") is { } caller)
        {
            if (caller.Identity.Namespace != Config.MeshSecurity.RootNamespace)
            {
                throw new RpcException(new Grpc.Core.Status(StatusCode.PermissionDenied,
                    $"client status lists every proxy of the mesh: on the TLS port it is served to identities of the {Config.MeshSecurity.RootNamespace} namespace only, and this certificate is {caller.Identity.Namespace}/{caller.Identity.ServiceAccount}; use a certificate of {Config.MeshSecurity.RootNamespace}, or ask the plaintext xDS port from the control plane's machine"));
            }
            return;
        }
        var remote = context.GetHttpContext().Connection.RemoteIpAddress;
        if (remote is null || !IPAddress.IsLoopback(remote))
        {
            throw new RpcException(new Grpc.Core.Status(StatusCode.PermissionDenied, "client status is served to loopback callers only: it lists every proxy of the mesh"));
        }
    }
}
