using System.Net.WebSockets;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>Bodies stream both ways through two sidecars; upgrades pass.</summary>
public sealed class StreamingTests
{
    private static readonly Dictionary<string, string> ClientLabels = new() { ["app"] = "client" };

    [Fact]
    public async Task Upload100MB_ThroughTwoSidecars_ArrivesWhole()
    {
        await using var backend = await TestBackend.StartAsync("sink");
        await using var mesh = await MeshHarness.StartAsync(("sink.yaml", MeshYaml.Service("sink", 9080)));
        await mesh.StartSidecarAsync("sink-v1", new Dictionary<string, string> { ["app"] = "sink" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", ClientLabels, [], "outbound|9080||sink.default.svc.cluster.local");
        using var http = client.Client(Timeouts.Long);
        const long size = 100L * 1024 * 1024;

        using var content = new StreamContent(new PatternStream(size), 64 * 1024);
        using var response = await http.PostAsync("http://sink:9080/upload", content).Within(Timeouts.Long);

        Assert.Equal($"received={size}", await response.Content.ReadAsStringAsync());
    }

    [Fact]
    public async Task WebSocket_ThroughTwoSidecars_EchoesMessages()
    {
        await using var backend = await TestBackend.StartAsync("ws");
        await using var mesh = await MeshHarness.StartAsync(("ws.yaml", MeshYaml.Service("ws", 9080)));
        await mesh.StartSidecarAsync("ws-v1", new Dictionary<string, string> { ["app"] = "ws" }, [("http", 9080, backend.Port)]);
        var client = await mesh.StartSidecarAsync("client", ClientLabels, [], "outbound|9080||ws.default.svc.cluster.local");

        // Connect to the sidecar, keep Host ws:9080 (a client library through HTTP_PROXY would use CONNECT, not supported yet).
        using var socket = new ClientWebSocket();
        using var invoker = new HttpMessageInvoker(client.ConnectVia());
        await socket.ConnectAsync(new Uri("ws://ws:9080/ws"), invoker, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        await socket.SendAsync("hello mesh"u8.ToArray(), WebSocketMessageType.Text, true, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
        var buffer = new byte[64];
        var received = await socket.ReceiveAsync(buffer, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);

        Assert.Equal("hello mesh", System.Text.Encoding.UTF8.GetString(buffer, 0, received.Count));
        await socket.CloseAsync(WebSocketCloseStatus.NormalClosure, "done", Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
    }

    /// <summary>A large body generated on the fly, so the test itself holds no 100 MB buffer.</summary>
    private sealed class PatternStream(long length) : Stream
    {
        private long _position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => length;
        public override long Position { get => _position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            var n = (int)Math.Min(count, length - _position);
            buffer.AsSpan(offset, n).Fill((byte)'b');
            _position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
