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
    private readonly TaskCompletionSource _writesOpen = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Reader _reader;
    private readonly Task _run;

    /// <param name="writesBlocked">Every response write waits until <see cref="OpenWrites"/>, as a write to a client that does not read does.</param>
    public InMemoryAdsStream(Func<ServiceIndex, ProxyNode, XdsSnapshot>? translate = null, int maxResponseBytes = XdsLimits.MaxMessageBytes, bool writesBlocked = false)
    {
        Mesh = new MeshState(NullLogger<MeshState>.Instance);
        Proxies = new ConnectedProxies(TimeProvider.System);
        if (!writesBlocked)
        {
            _writesOpen.SetResult();
        }
        _reader = new Reader(_requests.Reader);
        var stream = new AdsStream(_reader, new Writer(_responses.Writer, _writesOpen.Task), Mesh, Proxies, NullLogger.Instance, translate, maxResponseBytes);
        _run = Task.Run(() => stream.RunAsync("in-memory", _stop.Token));
    }

    /// <summary>How many requests the stream has taken off the wire.</summary>
    public int RequestsRead => _reader.Count;

    public void OpenWrites() => _writesOpen.TrySetResult();

    public MeshState Mesh { get; }

    public ConnectedProxies Proxies { get; }

    public async Task SendAsync(DiscoveryRequest request) => await _requests.Writer.WriteAsync(request).AsTask().WaitAsync(TestTimeouts.Default);

    public async Task<DiscoveryResponse> ReceiveAsync() => await _responses.Reader.ReadAsync().AsTask().WaitAsync(TestTimeouts.Default);

    /// <summary>True when the stream has written nothing it has not been asked for yet.</summary>
    public bool NothingSent => !_responses.Reader.TryPeek(out _);

    public async ValueTask DisposeAsync()
    {
        OpenWrites();
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
        private int _count;

        public DiscoveryRequest Current { get; private set; } = null!;

        public int Count => Volatile.Read(ref _count);

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            if (!await requests.WaitToReadAsync(cancellationToken))
            {
                return false;
            }
            Current = await requests.ReadAsync(cancellationToken);
            Interlocked.Increment(ref _count);
            return true;
        }
    }

    private sealed class Writer(ChannelWriter<DiscoveryResponse> responses, Task open) : IServerStreamWriter<DiscoveryResponse>
    {
        public WriteOptions? WriteOptions { get; set; }

        public async Task WriteAsync(DiscoveryResponse message)
        {
            await open;
            await responses.WriteAsync(message);
        }
    }
}
