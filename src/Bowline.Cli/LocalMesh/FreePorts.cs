using System.Net;
using System.Net.Sockets;

namespace Bowline.Cli.LocalMesh;

/// <summary>
/// Hands out free TCP ports by binding port 0 and releasing it. Another program may take the port before the child
/// binds it; on one developer machine that race is rare, and the child's exit is reported and retried.
/// </summary>
/// <remarks>Not thread-safe: ports are planned once, before anything starts.</remarks>
internal sealed class FreePorts
{
    private readonly HashSet<int> _taken = [];

    /// <summary>Ports fixed by options, so a picked port never collides with them.</summary>
    public void Reserve(int port)
    {
        if (port != 0)
        {
            _taken.Add(port);
        }
    }

    public int Pick(IPAddress address)
    {
        for (var attempt = 0; attempt < 100; attempt++)
        {
            var listener = new TcpListener(address, 0);
            listener.Start();
            var port = ((IPEndPoint)listener.LocalEndpoint).Port;
            listener.Stop();
            if (_taken.Add(port))
            {
                return port;
            }
        }
        throw new InvalidOperationException($"no free port on {address} after 100 attempts");
    }
}
