using Bowline.Samples.GrpcEcho.Client;
using Bowline.Samples.GrpcEcho.Server;

// One binary plays both roles so a test or a demo needs to build a single project.
return args switch
{
    ["server", ..] => await EchoServerHost.RunAsync(),
    ["client", .. var rest] => await EchoClientCommand.RunAsync(rest),
    _ => Usage(),
};

static int Usage()
{
    Console.Error.WriteLine(
        """
        usage:
          grpc-echo server
              env PORT (default 50051), SERVICE_VERSION (default v1), POD_NAME
          grpc-echo client --target <host:port> [--via <sidecar host:port>] [--count N] [--stream N] [--deadline SECONDS]
        """);
    return 64;
}
