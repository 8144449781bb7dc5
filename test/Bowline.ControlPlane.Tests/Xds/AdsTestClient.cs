using Bowline.ControlPlane.Tests.Infrastructure;
using Envoy.Config.Core.V3;
using Envoy.Service.Discovery.V3;
using Grpc.Core;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>One state-of-the-world ADS stream driven by hand, the way an xDS client drives it: requests, ACKs and NACKs.</summary>
internal sealed class AdsTestClient(AsyncDuplexStreamingCall<DiscoveryRequest, DiscoveryResponse> call) : IDisposable
{
    public Task SendAsync(DiscoveryRequest request) => call.RequestStream.WriteAsync(request).WaitAsync(TestTimeouts.Default);

    /// <summary>The first request of a type: the node (only needed on the stream's first request) and the names (none: wildcard).</summary>
    public Task SubscribeAsync(string typeUrl, Node? node, params string[] names)
    {
        var request = new DiscoveryRequest { TypeUrl = typeUrl, Node = node };
        request.ResourceNames.AddRange(names);
        return SendAsync(request);
    }

    /// <summary>Accepts a response: its nonce and version, the same names.</summary>
    public Task AckAsync(DiscoveryResponse response, params string[] names)
    {
        var request = new DiscoveryRequest { TypeUrl = response.TypeUrl, VersionInfo = response.VersionInfo, ResponseNonce = response.Nonce };
        request.ResourceNames.AddRange(names);
        return SendAsync(request);
    }

    /// <summary>Rejects a response: its nonce, the last accepted version, and why.</summary>
    public Task NackAsync(DiscoveryResponse response, string acceptedVersion, string reason, params string[] names)
    {
        var request = new DiscoveryRequest
        {
            TypeUrl = response.TypeUrl,
            VersionInfo = acceptedVersion,
            ResponseNonce = response.Nonce,
            ErrorDetail = new Google.Rpc.Status { Code = (int)StatusCode.InvalidArgument, Message = reason },
        };
        request.ResourceNames.AddRange(names);
        return SendAsync(request);
    }

    public Task<DiscoveryResponse> ReceiveAsync() => ReceiveAsync(TestTimeouts.Default);

    /// <summary>For answers whose translation is heavy (thousands of resources): a bound that a busy shared machine cannot hit.</summary>
    public async Task<DiscoveryResponse> ReceiveAsync(TimeSpan bound)
    {
        Assert.True(await call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(bound), "the server ended the stream");
        return call.ResponseStream.Current;
    }

    /// <summary>Waits for the server to end the stream with an error status.</summary>
    public async Task<RpcException> ReceiveErrorAsync() =>
        await Assert.ThrowsAsync<RpcException>(() => call.ResponseStream.MoveNext(CancellationToken.None).WaitAsync(TestTimeouts.Default));

    public void Dispose() => call.Dispose();
}
