using System.Net;
using System.Net.Sockets;

namespace Bowline.Samples.GrpcEcho.Client;

/// <summary>
/// Builds the HTTP handler that sends every request to a Bowline sidecar while leaving the
/// request addressed to the real service.
/// </summary>
/// <remarks>
/// This is how an application in any language reaches its sidecar without DNS tricks or
/// iptables: keep the URL's host:port as the service (so HTTP/2 :authority is
/// <c>grpc-echo:50051</c> and the sidecar routes by it, just as an Envoy outbound listener routes
/// by Host), and open the TCP connection to the sidecar's outbound address instead of resolving
/// the service name. The name need not resolve at all; only the sidecar has to know it.
/// </remarks>
internal static class SidecarConnector
{
    public static SocketsHttpHandler CreateHandler(DnsEndPoint? via)
    {
        var handler = new SocketsHttpHandler();
        if (via is null)
        {
            return handler;
        }

        handler.ConnectCallback = async (_, cancellationToken) =>
        {
            // The context's DnsEndPoint (the target) is ignored on purpose: see the remarks.
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(via, cancellationToken);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        };
        return handler;
    }
}
