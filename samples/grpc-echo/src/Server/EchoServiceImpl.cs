using Bowline.Samples.Echo.V1;
using Grpc.Core;

namespace Bowline.Samples.GrpcEcho.Server;

/// <summary>
/// Echoes requests back, marking each with the server's version in a response header and with a
/// fixed trailer: end-to-end tests assert both arrive, which proves a proxy forwarded HTTP/2
/// headers and trailers rather than just the body.
/// </summary>
internal sealed class EchoServiceImpl(EchoServerState state) : EchoService.EchoServiceBase
{
    public const string VersionHeader = "x-echo-version";
    public const string TrailerName = "x-echo-trailer";
    public const string TrailerValue = "done";

    // Bounds the work one request can ask for; a test needs 10,000.
    private const int MaxStreamCount = 1_000_000;

    /// <summary>A request whose message is <c>unavailable-from:&lt;version&gt;</c> fails with UNAVAILABLE on that version's servers, for retry tests.</summary>
    public const string FailPrefix = "unavailable-from:";

    public override async Task<EchoResponse> Echo(EchoRequest request, ServerCallContext context)
    {
        if (request.Message.StartsWith(FailPrefix, StringComparison.Ordinal) && request.Message[FailPrefix.Length..] == state.Version)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"{state.Version} was asked to fail"));
        }
        await context.WriteResponseHeadersAsync(new Metadata { { VersionHeader, state.Version } });
        context.ResponseTrailers.Add(TrailerName, TrailerValue);
        return Respond(request.Message, state.NextUnarySequence());
    }

    public override async Task EchoStream(
        EchoStreamRequest request,
        IServerStreamWriter<EchoResponse> responseStream,
        ServerCallContext context)
    {
        if (request.Count is < 1 or > MaxStreamCount)
        {
            throw new RpcException(new Status(
                StatusCode.InvalidArgument,
                $"EchoStreamRequest.count is {request.Count}; set it to 1-{MaxStreamCount}."));
        }

        await context.WriteResponseHeadersAsync(new Metadata { { VersionHeader, state.Version } });
        for (var sequence = 1; sequence <= request.Count; sequence++)
        {
            context.CancellationToken.ThrowIfCancellationRequested();
            await responseStream.WriteAsync(Respond(request.Message, sequence), context.CancellationToken);
        }

        context.ResponseTrailers.Add(TrailerName, TrailerValue);
    }

    private EchoResponse Respond(string message, long sequence) => new()
    {
        Message = message,
        Version = state.Version,
        Hostname = state.Hostname,
        Sequence = sequence,
    };
}
