using Bowline.Samples.Echo.V1;
using Grpc.Core;

namespace Bowline.Samples.GrpcEcho.Server;

/// <summary>
/// Echoes requests back, marking each with the server's version in a response header and with a
/// fixed trailer: end-to-end tests assert both arrive, which proves a proxy forwarded HTTP/2
/// headers and trailers rather than just the body.
/// </summary>
internal sealed class EchoServiceImpl(EchoServerState state, HeldCalls held) : EchoService.EchoServiceBase
{
    public const string VersionHeader = "x-echo-version";
    public const string TrailerName = "x-echo-trailer";
    public const string TrailerValue = "done";

    // Bounds the work one request can ask for; a test needs 10,000.
    private const int MaxStreamCount = 1_000_000;

    /// <summary>A request whose message is <c>unavailable-from:&lt;version&gt;</c> fails with UNAVAILABLE on that version's servers, for retry tests.</summary>
    public const string FailPrefix = "unavailable-from:";

    /// <summary>
    /// A request whose message is <c>hold:&lt;group&gt;</c> gets its response headers at once (so the client knows it is
    /// in flight) and its response only when a <c>release:&lt;group&gt;</c> request reaches this server, for
    /// concurrency tests (circuit breaking) that must not depend on timing.
    /// </summary>
    public const string HoldPrefix = "hold:";

    /// <summary>Completes the calls held under the group named after the prefix; the reply's message is <c>released:&lt;count&gt;</c>.</summary>
    public const string ReleasePrefix = "release:";

    public override async Task<EchoResponse> Echo(EchoRequest request, ServerCallContext context)
    {
        if (request.Message.StartsWith(FailPrefix, StringComparison.Ordinal) && request.Message[FailPrefix.Length..] == state.Version)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"{state.Version} was asked to fail"));
        }
        await context.WriteResponseHeadersAsync(new Metadata { { VersionHeader, state.Version } });
        var message = request.Message;
        if (message.StartsWith(HoldPrefix, StringComparison.Ordinal)
            && !await held.HoldAsync(message[HoldPrefix.Length..], context.CancellationToken))
        {
            throw new RpcException(new Status(StatusCode.Aborted, $"'{message}' was held {HeldCalls.MaxHold.TotalSeconds:0} s and no '{ReleasePrefix}{message[HoldPrefix.Length..]}' call came"));
        }
        if (message.StartsWith(ReleasePrefix, StringComparison.Ordinal))
        {
            message = $"released:{held.Release(message[ReleasePrefix.Length..])}";
        }
        context.ResponseTrailers.Add(TrailerName, TrailerValue);
        return Respond(message, state.NextUnarySequence());
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
