using System.Threading.Channels;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.ControlPlane.Xds;
using Envoy.Service.Discovery.V3;
using Grpc.Core;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bowline.ControlPlane.Tests.Xds;

/// <summary>
/// One <see cref="AdsStream"/> run without gRPC, over in-memory request and response streams, so a test can replace
/// translation (make it fail) and publish generations by hand.
/// </summary>
internal sealed class InMemoryAdsStream : IAsyncDisposable
{
    private readonly Channel<DiscoveryRequest> _requests = Channel.CreateUnbounded<DiscoveryRequest>();
    private readonly Channel<DiscoveryResponse> _responses = Channel.CreateUnbounded<DiscoveryResponse>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _run;

    public InMemoryAdsStream(Func<ServiceIndex, ProxyNode, XdsSnapshot> translate)
    {
        Mesh = new MeshState(NullLogger<MeshState>.Instance);
        Proxies = new ConnectedProxies(TimeProvider.System);
        var stream = new AdsStream(new Reader(_requests.Reader), new Writer(_responses.Writer), Mesh, Proxies, NullLogger.Instance, translate);
        _run = Task.Run(() => stream.RunAsync("in-memory", _stop.Token));
    }

    public MeshState Mesh { get; }

    public ConnectedProxies Proxies { get; }

    public async Task SendAsync(DiscoveryRequest request) => await _requests.Writer.WriteAsync(request).AsTask().WaitAsync(TestTimeouts.Default);

    public async Task<DiscoveryResponse> ReceiveAsync() => await _responses.Reader.ReadAsync().AsTask().WaitAsync(TestTimeouts.Default);

    /// <summary>True when the stream has written nothing it has not been asked for yet.</summary>
    public bool NothingSent => !_responses.Reader.TryPeek(out _);

    public async ValueTask DisposeAsync()
    {
        _requests.Writer.TryComplete();
        await _stop.CancelAsync();
        try
        {
            await _run.WaitAsync(TestTimeouts.Default);
        }
        catch (OperationCanceledException)
        {
        }
        _stop.Dispose();
    }

    private sealed class Reader(ChannelReader<DiscoveryRequest> requests) : IAsyncStreamReader<DiscoveryRequest>
    {
        public DiscoveryRequest Current { get; private set; } = null!;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!await requests.WaitToReadAsync(cancellationToken))
            {
                return false;
            }
            Current = await requests.ReadAsync(cancellationToken);
            return true;
        }
    }

    private sealed class Writer(ChannelWriter<DiscoveryResponse> responses) : IServerStreamWriter<DiscoveryResponse>
    {
        public WriteOptions? WriteOptions { get; set; }

        public Task WriteAsync(DiscoveryResponse message) => responses.WriteAsync(message).AsTask();
    }
}
