using System.Net;
using System.Net.Sockets;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>Free loopback ports, for the addresses the control plane must be told up front (a proxy's listeners come from xDS, so they cannot bind port 0).</summary>
internal static class Ports
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
