using System.Net;
using System.Net.Sockets;
using System.Text;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Tests.Infrastructure;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Tests.Listeners;

/// <summary>HTTP/1.1 and h2c prior knowledge on one cleartext port, as a listener serves them.</summary>
public sealed class Http2PriorKnowledgeTests : IAsyncLifetime
{
    private static readonly byte[] Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8.ToArray();

    private WebApplication _app = null!;
    private int _port;

    public async Task InitializeAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.AllowAlternateSchemes = true;
            k.Listen(IPAddress.Loopback, 0, l =>
            {
                l.Protocols = HttpProtocols.Http1AndHttp2;
                l.Use(Http2PriorKnowledge.Middleware);
            });
        });
        _app = builder.Build();
        _app.Run(context => context.Response.WriteAsync($"{context.Request.Protocol} {context.Request.Scheme}"));
        await _app.StartAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);
        _port = new Uri(_app.Urls.First()).Port;
    }

    public async Task DisposeAsync()
    {
        await _app.StopAsync(Timeouts.Token()).WaitAsync(Timeouts.Default);
        await _app.DisposeAsync().AsTask().WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task Middleware_Http11Request_IsServedAsHttp11()
    {
        using var client = new HttpClient { Timeout = Timeouts.Default };

        using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{_port}/")).WaitAsync(Timeouts.Default);

        Assert.Equal(HttpVersion.Version11, response.Version);
        Assert.Equal("HTTP/1.1 http", await response.Content.ReadAsStringAsync().WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task Middleware_PriorKnowledgeH2c_IsServedAsHttp2WithSchemeHttp()
    {
        using var client = new HttpClient
        {
            Timeout = Timeouts.Default,
            DefaultRequestVersion = HttpVersion.Version20,
            DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };

        using var response = await client.GetAsync(new Uri($"http://127.0.0.1:{_port}/")).WaitAsync(Timeouts.Default);

        Assert.Equal(HttpVersion.Version20, response.Version);
        // The h2 marker looks like TLS to Kestrel; the request must still say what the client sent.
        Assert.Equal("HTTP/2 http", await response.Content.ReadAsStringAsync().WaitAsync(Timeouts.Default));
    }

    [Fact]
    public async Task Middleware_BothProtocolsOnOnePort_ServesEachConcurrently()
    {
        using var h1 = new HttpClient { Timeout = Timeouts.Default };
        using var h2 = new HttpClient { Timeout = Timeouts.Default, DefaultRequestVersion = HttpVersion.Version20, DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact };
        var uri = new Uri($"http://127.0.0.1:{_port}/");

        var bodies = await Task.WhenAll(
            Enumerable.Range(0, 10).Select(i => (i % 2 == 0 ? h1 : h2).GetStringAsync(uri))).WaitAsync(Timeouts.Default);

        Assert.Equal(5, bodies.Count(b => b == "HTTP/1.1 http"));
        Assert.Equal(5, bodies.Count(b => b == "HTTP/2 http"));
    }

    [Fact]
    public async Task Middleware_RawHttp11Request_GetsAnHttp11StatusLine()
    {
        using var socket = await ConnectAsync();

        await socket.SendAsync("GET / HTTP/1.1\r\nHost: a\r\n\r\n"u8.ToArray().AsMemory()).AsTask().WaitAsync(Timeouts.Default);

        Assert.Equal("HTTP/1.1 200 OK", await ReadStatusLineAsync(socket));
    }

    [Fact]
    public async Task Middleware_RequestShorterThanThePreface_IsNotHeldBack()
    {
        // 18 bytes, fewer than the 24 of the preface: the sniffer must decide on the first byte, not wait for 24.
        using var socket = await ConnectAsync();

        await socket.SendAsync("GET / HTTP/1.0\r\n\r\n"u8.ToArray().AsMemory()).AsTask().WaitAsync(Timeouts.Default);

        Assert.StartsWith("HTTP/1.1 200", await ReadStatusLineAsync(socket), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Middleware_PrefaceSplitAcrossWrites_IsStillHttp2()
    {
        using var socket = await ConnectAsync();

        await socket.SendAsync(Preface.AsMemory(0, 1)).AsTask().WaitAsync(Timeouts.Default);
        await socket.SendAsync(Preface.AsMemory(1, 15)).AsTask().WaitAsync(Timeouts.Default);
        await socket.SendAsync(Preface.AsMemory(16)).AsTask().WaitAsync(Timeouts.Default);
        // An empty SETTINGS frame: length 0, type 0x4, no flags, stream 0.
        await socket.SendAsync(new byte[] { 0, 0, 0, 4, 0, 0, 0, 0, 0 }.AsMemory()).AsTask().WaitAsync(Timeouts.Default);

        // The server's first frame on an HTTP/2 connection is its SETTINGS.
        var header = await ReadExactlyAsync(socket, 9);
        Assert.Equal(0x4, header[3]);
        Assert.Equal(0u, BitConverter.ToUInt32([header[8], header[7], header[6], header[5]]));
    }

    [Fact]
    public async Task Middleware_ClientLeavesMidPreface_ConnectionIsNotTreatedAsHttp2()
    {
        using var socket = await ConnectAsync();

        await socket.SendAsync(Preface.AsMemory(0, 16)).AsTask().WaitAsync(Timeouts.Default);
        socket.Shutdown(SocketShutdown.Send);

        // Whatever HTTP/1.1 makes of "PRI * HTTP/2.0", it is not an HTTP/2 SETTINGS frame, and the connection ends.
        var received = await ReadToEndAsync(socket);
        Assert.False(received.Length >= 9 && received[3] == 0x4 && received[0] == 0, "the server answered with HTTP/2 frames");
    }

    [Fact]
    public async Task Middleware_SilentConnectionDuringGracefulStop_IsClosed()
    {
        using var socket = await ConnectAsync();

        try
        {
            // Without the sniffer Kestrel closes a connection that has not begun a request at once when asked to stop.
            await _app.StopAsync(CancellationToken.None).WaitAsync(Timeouts.Default);
            // Closed either way: a FIN (0 bytes) or, when the server aborts the socket, a reset.
            var closed = await Record.ExceptionAsync(async () => Assert.Equal(0, await socket.ReceiveAsync(new byte[1].AsMemory()).AsTask().WaitAsync(Timeouts.Default)));
            Assert.True(closed is null or SocketException { SocketErrorCode: SocketError.ConnectionReset }, closed?.ToString());
        }
        finally
        {
            socket.Close();
        }
    }

    private async Task<Socket> ConnectAsync()
    {
        var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(IPAddress.Loopback, _port).WaitAsync(Timeouts.Default);
        return socket;
    }

    private static async Task<string> ReadStatusLineAsync(Socket socket)
    {
        var received = new List<byte>();
        var buffer = new byte[256];
        while (true)
        {
            var text = Encoding.ASCII.GetString([.. received]);
            var end = text.IndexOf("\r\n", StringComparison.Ordinal);
            if (end >= 0)
            {
                return text[..end];
            }
            var read = await socket.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeouts.Default);
            Assert.True(read > 0, "the server closed the connection before a status line: " + text);
            received.AddRange(buffer.AsSpan(0, read));
        }
    }

    private static async Task<byte[]> ReadExactlyAsync(Socket socket, int count)
    {
        var buffer = new byte[count];
        var filled = 0;
        while (filled < count)
        {
            var read = await socket.ReceiveAsync(buffer.AsMemory(filled)).AsTask().WaitAsync(Timeouts.Default);
            Assert.True(read > 0, "the server closed the connection early");
            filled += read;
        }
        return buffer;
    }

    private static async Task<byte[]> ReadToEndAsync(Socket socket)
    {
        var received = new List<byte>();
        var buffer = new byte[1024];
        int read;
        while ((read = await socket.ReceiveAsync(buffer.AsMemory()).AsTask().WaitAsync(Timeouts.Default)) > 0)
        {
            received.AddRange(buffer.AsSpan(0, read));
        }
        return [.. received];
    }
}
