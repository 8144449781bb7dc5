using System.Net;
using System.Net.Sockets;

namespace Bowline.Testing;

/// <summary>
/// Free loopback ports for addresses that must be known up front (a proxy's listeners come from xDS, so they cannot
/// bind port 0). They come from below Linux's ephemeral range (32768-60999): a port handed out by bind(0) or used as
/// the local port of an outgoing connection can be taken again between our check and the proxy's bind, one from
/// 20000-32000 cannot. Each test process starts at a random offset so parallel test assemblies rarely meet.
/// </summary>
internal static class Ports
{
    private const int First = 20000;
    private const int Count = 12000;
    private static int s_next = Random.Shared.Next(Count);

    public static int Free()
    {
        for (var attempt = 0; attempt < Count; attempt++)
        {
            var port = First + (Interlocked.Increment(ref s_next) % Count);
            try
            {
                using var listener = new TcpListener(IPAddress.Loopback, port);
                listener.Start();
                return port;
            }
            catch (SocketException)
            {
                // In use: try the next one.
            }
        }
        throw new InvalidOperationException($"no free loopback port in {First}-{First + Count - 1}");
    }
}
