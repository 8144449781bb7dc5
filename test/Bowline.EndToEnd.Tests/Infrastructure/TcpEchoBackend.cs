using System.Net;
using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>
/// Istio's tcp-echo sample as a real socket server: every line a client sends comes back prefixed with the
/// backend's word (<c>one hello</c>), until the client closes. With a certificate it terminates TLS itself, as an app
/// behind a PASSTHROUGH gateway does.
/// </summary>
internal sealed class TcpEchoBackend : IAsyncDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly CancellationTokenSource _stop = new();
    private readonly X509Certificate2? _certificate;
    private readonly string _prefix;
    private readonly Task _accepting;
    private int _connections;

    private TcpEchoBackend(string prefix, X509Certificate2? certificate)
    {
        _prefix = prefix;
        _certificate = certificate;
        _listener.Start();
        _accepting = AcceptAsync();
    }

    public int Port => ((IPEndPoint)_listener.LocalEndpoint).Port;

    /// <summary>Connections accepted so far.</summary>
    public int Connections => Volatile.Read(ref _connections);

    public static TcpEchoBackend Start(string prefix, X509Certificate2? certificate = null) => new(prefix, certificate);

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = await _listener.AcceptSocketAsync(_stop.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            Interlocked.Increment(ref _connections);
            _ = ServeAsync(socket);
        }
    }

    private async Task ServeAsync(Socket socket)
    {
        try
        {
            await using Stream network = new NetworkStream(socket, ownsSocket: true);
            var stream = network;
            if (_certificate is not null)
            {
                var ssl = new SslStream(network);
                await ssl.AuthenticateAsServerAsync(new SslServerAuthenticationOptions { ServerCertificate = _certificate }, _stop.Token);
                stream = ssl;
            }
            using var reader = new StreamReader(stream, Encoding.UTF8, leaveOpen: true);
            while (await reader.ReadLineAsync(_stop.Token) is { } line)
            {
                await stream.WriteAsync(Encoding.UTF8.GetBytes($"{_prefix} {line}\n"), _stop.Token);
                await stream.FlushAsync(_stop.Token);
            }
        }
        catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or System.Security.Authentication.AuthenticationException)
        {
            // The client went away or the backend is stopping.
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _listener.Stop();
        await _accepting;
        _stop.Dispose();
    }
}
