using System.Globalization;
using System.Net;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace Bowline.Samples.GrpcEcho.Server;

/// <summary>Runs the echo server: h2c on 127.0.0.1:$PORT.</summary>
internal static class EchoServerHost
{
    private const int DefaultPort = 50051;

    public static async Task<int> RunAsync()
    {
        if (!TryReadPort(out var port))
        {
            return 64;
        }

        var builder = WebApplication.CreateSlimBuilder();

        // Loopback only: in the mesh the sidecar is the only way in, so traffic cannot bypass its
        // policy. HTTP/2 only, without TLS (h2c with prior knowledge), because gRPC needs nothing
        // else and the sidecar terminates mTLS. The endpoint is set in code so that
        // ASPNETCORE_URLS or ASPNETCORE_HTTP_PORTS in the environment cannot move it.
        builder.WebHost.ConfigureKestrel(kestrel =>
            kestrel.Listen(IPAddress.Loopback, port, listen => listen.Protocols = HttpProtocols.Http2));

        // A line per request would cost more than the echo itself when the benchmark drives it.
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);

        builder.Services.AddGrpc();
        builder.Services.AddSingleton(EchoServerState.FromEnvironment());
        builder.Services.AddSingleton<HeldCalls>();

        var app = builder.Build();
        app.MapGrpcService<EchoServiceImpl>();
        await app.RunAsync();
        return 0;
    }

    private static bool TryReadPort(out int port)
    {
        var raw = Environment.GetEnvironmentVariable("PORT");
        if (string.IsNullOrEmpty(raw))
        {
            port = DefaultPort;
            return true;
        }

        if (int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out port) && port is > 0 and <= 65535)
        {
            return true;
        }

        Console.Error.WriteLine($"grpc-echo: env PORT='{raw}' is not a TCP port; set it to 1-65535 or unset it for {DefaultPort}.");
        return false;
    }
}
