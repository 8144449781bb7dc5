using System.Net;
using System.Net.Sockets;

namespace Bowline.Cli.LocalMesh;

/// <summary>Bounded waits for a child to become usable, polled, giving up early once the child has exited.</summary>
internal static class Readiness
{
    private static readonly TimeSpan PollInterval = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(1);

    /// <summary>Waits until a TCP connect to <paramref name="port"/> succeeds.</summary>
    /// <returns>False when <paramref name="timeout"/> passed or <paramref name="gone"/> said the process is gone.</returns>
    public static Task<bool> WaitForTcpAsync(IPAddress address, int port, TimeSpan timeout, Func<bool> gone, TimeProvider time, CancellationToken cancellationToken) =>
        PollAsync(async attempt =>
        {
            using var client = new TcpClient(address.AddressFamily);
            await client.ConnectAsync(address, port, attempt).ConfigureAwait(false);
            return true;
        }, timeout, gone, time, cancellationToken);

    /// <summary>Waits until GET <paramref name="url"/> answers 200.</summary>
    public static async Task<bool> WaitForHttpOkAsync(Uri url, TimeSpan timeout, Func<bool> gone, TimeProvider time, CancellationToken cancellationToken)
    {
        // UseProxy off: an HTTP_PROXY in the user's environment must not carry a loopback readiness probe away.
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false });
        return await PollAsync(async attempt =>
        {
            using var response = await http.GetAsync(url, attempt).ConfigureAwait(false);
            return response.IsSuccessStatusCode;
        }, timeout, gone, time, cancellationToken).ConfigureAwait(false);
    }

    private static async Task<bool> PollAsync(Func<CancellationToken, Task<bool>> probe, TimeSpan timeout, Func<bool> gone, TimeProvider time, CancellationToken cancellationToken)
    {
        var started = time.GetTimestamp();
        while (time.GetElapsedTime(started) < timeout)
        {
            if (gone())
            {
                return false;
            }
            using (var attempt = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken))
            {
                attempt.CancelAfter(AttemptTimeout);
                try
                {
                    if (await probe(attempt.Token).ConfigureAwait(false))
                    {
                        return true;
                    }
                }
                catch (Exception e) when (e is SocketException or HttpRequestException or OperationCanceledException && !cancellationToken.IsCancellationRequested)
                {
                    // Not listening yet.
                }
            }
            await Task.Delay(PollInterval, time, cancellationToken).ConfigureAwait(false);
        }
        return false;
    }
}
