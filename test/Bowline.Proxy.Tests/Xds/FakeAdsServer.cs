using System.Net;
using System.Threading.Channels;
using Bowline.Proxy.Tests.Infrastructure;
using Envoy.Service.Discovery.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Tests.Xds;

/// <summary>
/// A real ADS server (Kestrel, HTTP/2, gRPC) on loopback whose every move the test scripts: it records each
/// <see cref="DiscoveryRequest"/> the proxy sends, in order, and writes the responses the test pushes onto the newest
/// stream. Stopping it ends open streams cleanly (status OK), as a control plane that shuts down does.
/// </summary>
internal sealed class FakeAdsServer : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly StreamState _state;

    private FakeAdsServer(WebApplication app, StreamState state, Uri address)
    {
        _app = app;
        _state = state;
        Address = address;
    }

    public Uri Address { get; }

    /// <summary>How many ADS streams clients have opened.</summary>
    public int StreamCount => _state.StreamCount;

    public static async Task<FakeAdsServer> StartAsync(int port = 0)
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.Services.AddGrpc();
        var state = new StreamState();
        builder.Services.AddSingleton(state);
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, port, l => l.Protocols = HttpProtocols.Http2));
        var app = builder.Build();
        app.MapGrpcService<AdsService>();
        await app.StartAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);
        return new FakeAdsServer(app, state, new Uri(app.Urls.First()));
    }

    /// <summary>The next request any client sent, in arrival order.</summary>
    public async Task<DiscoveryRequest> NextRequestAsync() => await _state.Requests.Reader.ReadAsync().AsTask().WaitAsync(Timeouts.Default);

    /// <summary>The next request that carries a node, that is the first request of a stream; earlier ones are skipped.</summary>
    public async Task<DiscoveryRequest> NextStreamStartAsync()
    {
        while (true)
        {
            var request = await NextRequestAsync();
            if (request.Node is not null)
            {
                return request;
            }
        }
    }

    /// <summary>A request already received and not yet taken, if any.</summary>
    public DiscoveryRequest? TryNextRequest() => _state.Requests.Reader.TryRead(out var request) ? request : null;

    /// <summary>
    /// The newest stream stops reading requests (after the one its reader is already waiting for), as a control plane
    /// busy elsewhere does: HTTP/2 flow control then stops the client's writes once Kestrel's stream window is full.
    /// </summary>
    public void PauseReading() => (_state.CurrentStream ?? throw new InvalidOperationException("no client has opened a stream yet")).PauseReading();

    /// <summary>Sends a response on the newest stream; call after that stream's first request has been read.</summary>
    public async Task PushAsync(string typeUrl, string version, string nonce, params IMessage[] resources)
    {
        var response = new DiscoveryResponse { TypeUrl = typeUrl, VersionInfo = version, Nonce = nonce };
        response.Resources.AddRange(resources.Select(Any.Pack));
        var stream = _state.CurrentStream ?? throw new InvalidOperationException("no client has opened a stream yet");
        await stream.Responses.Writer.WriteAsync(response).AsTask().WaitAsync(Timeouts.Default);
    }

    /// <summary>Ends every open stream with status OK, then stops the server, freeing its port.</summary>
    public async Task StopAsync()
    {
        await _state.Stopping.CancelAsync();
        await _app.StopAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        await _app.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
        _state.Stopping.Dispose();
    }

    /// <summary>One open stream: what the test pushes onto it, and whether it still reads requests.</summary>
    private sealed class OpenStream
    {
        private TaskCompletionSource _reading = Open();

        public Channel<DiscoveryResponse> Responses { get; } = Channel.CreateUnbounded<DiscoveryResponse>();

        public Task ReadingAllowed => Volatile.Read(ref _reading).Task;

        public void PauseReading() => Volatile.Write(ref _reading, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));

        private static TaskCompletionSource Open()
        {
            var open = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            open.SetResult();
            return open;
        }
    }

    /// <summary>Shared by every stream of one server.</summary>
    private sealed class StreamState
    {
        private OpenStream? _current;
        private int _streamCount;

        public Channel<DiscoveryRequest> Requests { get; } = Channel.CreateUnbounded<DiscoveryRequest>();

        public CancellationTokenSource Stopping { get; } = new();

        public OpenStream? CurrentStream => Volatile.Read(ref _current);

        public int StreamCount => Volatile.Read(ref _streamCount);

        public OpenStream Open()
        {
            var stream = new OpenStream();
            Volatile.Write(ref _current, stream);
            Interlocked.Increment(ref _streamCount);
            return stream;
        }
    }

    private sealed class AdsService(StreamState state) : AggregatedDiscoveryService.AggregatedDiscoveryServiceBase
    {
        public override async Task StreamAggregatedResources(IAsyncStreamReader<DiscoveryRequest> requestStream, IServerStreamWriter<DiscoveryResponse> responseStream, ServerCallContext context)
        {
            // Registered before the first request is recorded, so a test that has read a request can push onto this stream.
            var stream = state.Open();
            using var ended = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken, state.Stopping.Token);
            var reading = RecordRequestsAsync(requestStream, stream, ended.Token);
            try
            {
                await foreach (var response in stream.Responses.Reader.ReadAllAsync(ended.Token))
                {
                    await responseStream.WriteAsync(response, ended.Token);
                }
            }
            catch (OperationCanceledException)
            {
                // The client left or the server is stopping: return, so the stream ends with status OK.
            }
            finally
            {
                await ended.CancelAsync();
                await reading;
            }
        }

        private async Task RecordRequestsAsync(IAsyncStreamReader<DiscoveryRequest> requests, OpenStream stream, CancellationToken cancellationToken)
        {
            try
            {
                while (await requests.MoveNext(cancellationToken))
                {
                    state.Requests.Writer.TryWrite(requests.Current);
                    await stream.ReadingAllowed.WaitAsync(cancellationToken);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or IOException or RpcException or InvalidOperationException)
            {
                // The stream ended under the reader.
            }
        }
    }
}
