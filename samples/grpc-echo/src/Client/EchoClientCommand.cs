using System.Text.Json;
using Bowline.Samples.Echo.V1;
using Bowline.Samples.GrpcEcho.Server;
using Grpc.Core;
using Grpc.Net.Client;

namespace Bowline.Samples.GrpcEcho.Client;

/// <summary>
/// Calls the echo service <c>--count</c> times, one after another, and prints a JSON summary.
/// Exits 0 when every call succeeded, 1 when any failed, 64 on bad arguments.
/// </summary>
internal static class EchoClientCommand
{
    private const int MaxErrors = 5;

    public static async Task<int> RunAsync(IReadOnlyList<string> args)
    {
        var options = EchoClientOptions.Parse(args, out var error);
        if (options is null)
        {
            Console.Error.WriteLine($"grpc-echo client: {error}");
            return 64;
        }

        using var channel = GrpcChannel.ForAddress(
            $"http://{options.Target}",
            new GrpcChannelOptions { HttpHandler = SidecarConnector.CreateHandler(options.Via) });
        var client = new EchoService.EchoServiceClient(channel);

        var tally = new Tally();
        for (var i = 1; i <= options.Count; i++)
        {
            var deadline = TimeProvider.System.GetUtcNow().UtcDateTime + options.Deadline;
            try
            {
                if (options.StreamMessages is { } messages)
                {
                    await StreamOnceAsync(client, i, messages, deadline, tally);
                }
                else
                {
                    await EchoOnceAsync(client, i, deadline, tally);
                }
            }
            catch (RpcException e)
            {
                // The detail alone is often vague ("Error connecting to subchannel."); the debug
                // exception names the socket error, which is what a failing test needs to show.
                var cause = e.Status.DebugException is { } debug ? $" ({debug.Message})" : "";
                tally.Fail($"{e.StatusCode}: {e.Status.Detail}{cause}");
            }
        }

        var summary = new ClientSummary(
            options.Target,
            options.Via is { } via ? $"{via.Host}:{via.Port}" : null,
            options.StreamMessages is null ? "unary" : "stream",
            tally.Ok,
            tally.Failed,
            tally.Messages,
            tally.Versions,
            tally.MissingHeader,
            tally.MissingTrailer,
            tally.Errors);
        Console.WriteLine(JsonSerializer.Serialize(summary, ClientSummaryJsonContext.Default.ClientSummary));
        return tally.Failed == 0 ? 0 : 1;
    }

    private static async Task EchoOnceAsync(EchoService.EchoServiceClient client, int call, DateTime deadline, Tally tally)
    {
        using var rpc = client.EchoAsync(new EchoRequest { Message = $"hello {call}" }, deadline: deadline);
        var headers = await rpc.ResponseHeadersAsync;
        var response = await rpc.ResponseAsync;
        tally.Messages++;
        tally.Complete(response.Version, headers, rpc.GetTrailers(), problem: null);
    }

    private static async Task StreamOnceAsync(EchoService.EchoServiceClient client, int call, int count, DateTime deadline, Tally tally)
    {
        using var rpc = client.EchoStream(new EchoStreamRequest { Message = $"stream {call}", Count = count }, deadline: deadline);
        var headers = await rpc.ResponseHeadersAsync;
        string? version = null;
        string? problem = null;
        long received = 0;
        await foreach (var response in rpc.ResponseStream.ReadAllAsync())
        {
            received++;
            version ??= response.Version;
            if (problem is null && response.Sequence != received)
            {
                problem = $"message {received} of stream {call} had sequence {response.Sequence}";
            }
        }

        tally.Messages += received;
        if (problem is null && received != count)
        {
            problem = $"stream {call} ended after {received} of {count} messages";
        }

        tally.Complete(version ?? "", headers, rpc.GetTrailers(), problem);
    }

    /// <summary>Running totals; used by one call at a time, so not thread-safe.</summary>
    private sealed class Tally
    {
        public int Ok { get; private set; }
        public int Failed { get; private set; }
        public long Messages { get; set; }
        public int MissingHeader { get; private set; }
        public int MissingTrailer { get; private set; }
        public SortedDictionary<string, int> Versions { get; } = new(StringComparer.Ordinal);
        public List<string> Errors { get; } = [];

        public void Complete(string version, Metadata headers, Metadata trailers, string? problem)
        {
            if (headers.GetValue(EchoServiceImpl.VersionHeader) is null)
            {
                MissingHeader++;
            }

            // A missing trailer fails the call: losing trailers breaks gRPC status, so it is the
            // bug a proxy most needs to be caught at.
            if (trailers.GetValue(EchoServiceImpl.TrailerName) != EchoServiceImpl.TrailerValue)
            {
                MissingTrailer++;
                problem ??= $"trailer {EchoServiceImpl.TrailerName}: {EchoServiceImpl.TrailerValue} missing";
            }

            if (problem is not null)
            {
                Fail(problem);
                return;
            }

            Ok++;
            Versions[version] = Versions.GetValueOrDefault(version) + 1;
        }

        public void Fail(string message)
        {
            Failed++;
            if (Errors.Count < MaxErrors && !Errors.Contains(message))
            {
                Errors.Add(message);
            }
        }
    }
}
