using Bowline.EndToEnd.Tests.Infrastructure;
using Bowline.Samples.Echo.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>gRPC through two sidecars against the grpc-echo sample running as a real process.</summary>
public sealed class GrpcTests
{
    private const string Cluster = "outbound|50051||grpc-echo.default.svc.cluster.local";

    internal static async Task<ChildProcess> StartEchoAsync(string version, int port)
    {
        var process = ChildProcess.Dotnet("grpc-echo.dll", ["server"], new Dictionary<string, string?> { ["PORT"] = port.ToString(System.Globalization.CultureInfo.InvariantCulture), ["SERVICE_VERSION"] = version, ["POD_NAME"] = $"grpc-echo-{version}" });
        await process.WaitForPortAsync(port, Timeouts.Long);
        return process;
    }

    private static async Task<(MeshHarness Mesh, Sidecar Client, ChildProcess Echo)> StartAsync()
    {
        var port = Ports.Free();
        var echo = await StartEchoAsync("v1", port);
        var mesh = await MeshHarness.StartAsync(("echo.yaml", MeshYaml.Service("grpc-echo", 50051, "grpc")));
        await mesh.StartSidecarAsync("grpc-echo-v1", new Dictionary<string, string> { ["app"] = "grpc-echo", ["version"] = "v1" }, [("grpc", 50051, port)]);
        var client = await mesh.StartSidecarAsync("client", new Dictionary<string, string> { ["app"] = "client" }, [], Cluster);
        return (mesh, client, echo);
    }

    [Fact]
    public async Task Unary_ThroughTwoSidecars_KeepsHeadersAndTrailers()
    {
        var (mesh, client, echo) = await StartAsync();
        await using var _ = mesh;
        await using var __ = echo;
        using var channel = GrpcChannel.ForAddress("http://grpc-echo:50051", new GrpcChannelOptions { HttpHandler = client.ConnectVia() });
        var echoClient = new EchoService.EchoServiceClient(channel);

        using var call = echoClient.EchoAsync(new EchoRequest { Message = "hi" }, deadline: DateTime.UtcNow.AddSeconds(10));
        var response = await call.ResponseAsync.Within(Timeouts.Short);
        var headers = await call.ResponseHeadersAsync.Within(Timeouts.Short);

        Assert.Equal("hi", response.Message);
        Assert.Equal("v1", response.Version);
        Assert.Equal("v1", headers.GetValue("x-echo-version"));
        Assert.Equal("done", call.GetTrailers().GetValue("x-echo-trailer"));
    }

    [Fact]
    public async Task ServerStream_10000Messages_ArriveInOrderWithTrailers()
    {
        var (mesh, client, echo) = await StartAsync();
        await using var _ = mesh;
        await using var __ = echo;
        using var channel = GrpcChannel.ForAddress("http://grpc-echo:50051", new GrpcChannelOptions { HttpHandler = client.ConnectVia() });
        var echoClient = new EchoService.EchoServiceClient(channel);

        using var call = echoClient.EchoStream(new EchoStreamRequest { Message = "m", Count = 10_000 }, deadline: DateTime.UtcNow.AddSeconds(60));
        long expected = 1;
        await foreach (var message in call.ResponseStream.ReadAllAsync(Timeouts.Token(Timeouts.Long)))
        {
            Assert.Equal(expected++, message.Sequence);
        }

        Assert.Equal(10_001, expected);
        Assert.Equal(StatusCode.OK, call.GetStatus().StatusCode);
        Assert.Equal("done", call.GetTrailers().GetValue("x-echo-trailer"));
    }
}
