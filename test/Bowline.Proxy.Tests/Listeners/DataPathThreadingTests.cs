using System.Net;
using System.Net.Sockets;
using Bowline.Proxy.Listeners;

namespace Bowline.Proxy.Tests.Listeners;

/// <summary>
/// The runtime still has the per-socket switch the data path relies on, and it does what the proxy assumes: an adopted
/// socket's completion continues on the socket event thread, any other socket's on the thread pool.
/// </summary>
public sealed class DataPathThreadingTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public void TheRuntimeHasThePerSocketSwitch()
    {
        // Fails when a .NET update drops Socket.PreferInlineCompletions: the proxy would still work, on the thread pool.
        Assert.True(DataPathThreading.Available, DataPathThreading.Describe());
        Assert.True(DataPathThreading.Inline, DataPathThreading.Describe());
    }

    [Fact]
    public async Task AnAdoptedSocket_ContinuesOnTheEventThread()
    {
        Assert.Equal(".NET Sockets", await ThreadThatReceivesAsync(adopt: true));
    }

    [Fact]
    public async Task AnyOtherSocket_ContinuesOnTheThreadPool()
    {
        Assert.NotEqual(".NET Sockets", await ThreadThatReceivesAsync(adopt: false));
    }

    /// <summary>Starts a receive that must wait (nothing sent yet), then sends, and names the thread the await resumed on.</summary>
    private static async Task<string?> ThreadThatReceivesAsync(bool adopt)
    {
        using var listener = new Socket(SocketType.Stream, ProtocolType.Tcp);
        listener.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        listener.Listen();
        using var client = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await client.ConnectAsync(listener.LocalEndPoint!).WaitAsync(Bound);
        using var server = await listener.AcceptAsync().WaitAsync(Bound);
        if (adopt)
        {
            DataPathThreading.Adopt(server);
        }
        var receiving = ReceiveAsync(server);
        Assert.False(receiving.IsCompleted);
        await client.SendAsync(new ArraySegment<byte>("x"u8.ToArray())).WaitAsync(Bound);
        return await receiving.WaitAsync(Bound);
    }

    private static async Task<string?> ReceiveAsync(Socket socket)
    {
        var buffer = new byte[16];
        var read = await socket.ReceiveAsync(buffer).ConfigureAwait(false);
        Assert.Equal(1, read);
        return Thread.CurrentThread.Name;
    }
}
