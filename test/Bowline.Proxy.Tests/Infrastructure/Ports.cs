using System.Net;
using System.Net.Sockets;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>A free loopback port, for values that must be known up front (the outbound port a proxy reports in its node metadata).</summary>
internal static class Ports
{
    public static int Free()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
