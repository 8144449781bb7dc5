using System.Buffers;
using System.Net;
using System.Net.Security;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Listeners.ListenerFilters;
using Envoy.Config.Listener.V3;

namespace Bowline.Proxy.Tests.Listeners;

/// <summary>The inspectors over real first bytes, and Envoy's filter-chain precedence over the criteria they produce.</summary>
public sealed class ListenerFilterTests
{
    [Fact]
    public async Task TlsInspector_RealClientHello_ReadsSniAndAlpn()
    {
        var hello = await ClientHelloAsync("Reviews.Default.svc.cluster.local", "istio-h2", "istio");

        Assert.Equal(TlsInspector.Verdict.Hello, TlsInspector.Inspect(new ReadOnlySequence<byte>(hello), out var parsed));
        Assert.Equal("reviews.default.svc.cluster.local", parsed!.ServerName);
        Assert.Equal(["istio-h2", "istio"], parsed.ApplicationProtocols);
    }

    [Fact]
    public async Task TlsInspector_PartialHello_AsksForMore()
    {
        var hello = await ClientHelloAsync("reviews", "h2");

        Assert.Equal(TlsInspector.Verdict.NeedMore, TlsInspector.Inspect(new ReadOnlySequence<byte>(hello, 0, 3), out _));
        Assert.Equal(TlsInspector.Verdict.NeedMore, TlsInspector.Inspect(new ReadOnlySequence<byte>(hello, 0, hello.Length - 1), out _));
    }

    [Theory]
    [InlineData("GET / HTTP/1.1\r\n")]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")]
    [InlineData("\u0016\u0003\u0001\u00ff\u00ff")]
    public void TlsInspector_NotAClientHello_IsRawBuffer(string head) =>
        Assert.Equal(TlsInspector.Verdict.NotTls, TlsInspector.Inspect(new ReadOnlySequence<byte>(System.Text.Encoding.Latin1.GetBytes(head)), out _));

    [Theory]
    [InlineData("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "h2c")]
    [InlineData("GET /productpage HTTP/1.1\r\nHost: x\r\n", "http/1.1")]
    [InlineData("POST / HTTP/1.0\r\n", "http/1.0")]
    [InlineData("SSH-2.0-OpenSSH_9.2\r\n", null)]
    public void HttpInspector_FirstBytes_NameTheProtocol(string head, string? protocol)
    {
        var result = HttpInspector.Inspect(new ReadOnlySequence<byte>(System.Text.Encoding.ASCII.GetBytes(head)), completed: false);

        Assert.Equal(protocol is null ? [] : [protocol], result);
    }

    [Fact]
    public void HttpInspector_IncompleteRequestLine_WaitsForMore() =>
        Assert.Null(HttpInspector.Inspect(new ReadOnlySequence<byte>("GET /prod"u8.ToArray()), completed: false));

    [Fact]
    public void Match_MostSpecificCriterionWins_InEnvoysOrder()
    {
        var matcher = new FilterChainMatcher<string>(
        [
            (Criteria(new FilterChainMatch { DestinationPort = 9080 }), "port"),
            (Criteria(new FilterChainMatch { DestinationPort = 9080, TransportProtocol = "tls" }), "port+tls"),
            (Criteria(new FilterChainMatch { DestinationPort = 9080, TransportProtocol = "tls", ServerNames = { "*.example.com" } }), "wildcard"),
            (Criteria(new FilterChainMatch { DestinationPort = 9080, TransportProtocol = "tls", ServerNames = { "api.example.com" } }), "exact"),
            (Criteria(new FilterChainMatch { TransportProtocol = "tls" }), "any-port-tls"),
        ], "default", "listener test");

        Assert.Equal("port", matcher.Match(Connection(9080, "raw_buffer")));
        Assert.Equal("port+tls", matcher.Match(Connection(9080, "tls")));
        Assert.Equal("wildcard", matcher.Match(Connection(9080, "tls", "web.example.com")));
        Assert.Equal("exact", matcher.Match(Connection(9080, "tls", "api.example.com")));
        // Destination port decides first: a chain for the port beats any chain without one, even a more specific one.
        Assert.Equal("any-port-tls", matcher.Match(Connection(8080, "tls", "api.example.com")));
        Assert.Equal("default", matcher.Match(Connection(8080, "raw_buffer")));
    }

    [Fact]
    public void Match_SourcePrefix_LongestWins()
    {
        var matcher = new FilterChainMatcher<string>(
        [
            (Criteria(new FilterChainMatch { SourcePrefixRanges = { new Envoy.Config.Core.V3.CidrRange { AddressPrefix = "10.0.0.0", PrefixLen = 8 } } }), "wide"),
            (Criteria(new FilterChainMatch { SourcePrefixRanges = { new Envoy.Config.Core.V3.CidrRange { AddressPrefix = "10.1.0.0", PrefixLen = 16 } } }), "narrow"),
        ], null, "listener test");

        Assert.Equal("narrow", matcher.Match(Connection(80, "raw_buffer", source: "10.1.2.3")));
        Assert.Equal("wide", matcher.Match(Connection(80, "raw_buffer", source: "10.9.2.3")));
        Assert.Null(matcher.Match(Connection(80, "raw_buffer", source: "192.168.0.1")));
    }

    [Fact]
    public void Match_TwoChainsWithTheSameMatch_IsANack()
    {
        var error = Assert.Throws<ProxyConfigException>(() => new FilterChainMatcher<string>(
            [(Criteria(new FilterChainMatch { DestinationPort = 80 }), "a"), (Criteria(new FilterChainMatch { DestinationPort = 80 }), "b")], null, "listener virtualInbound"));

        Assert.Contains("listener virtualInbound", error.Message);
        Assert.Contains("same filter_chain_match", error.Message);
    }

    [Fact]
    public void Criteria_BadServerName_IsRefusedNamingIt()
    {
        var error = Assert.Throws<ProxyConfigException>(() => Criteria(new FilterChainMatch { ServerNames = { "api.*.com" } }));

        Assert.Contains("api.*.com", error.Message);
    }

    private static FilterChainCriteria Criteria(FilterChainMatch match) => new(match, "listener test chain");

    private static ConnectionMetadata Connection(int port, string transport, string? serverName = null, string source = "127.0.0.1") =>
        new(IPAddress.Loopback, port, IPAddress.Parse(source), 40000, transport, serverName, []);

    /// <summary>The bytes a real .NET TLS client sends first.</summary>
    private static async Task<byte[]> ClientHelloAsync(string serverName, params string[] alpn)
    {
        var capture = new CaptureStream();
        using var ssl = new SslStream(capture);
        await Assert.ThrowsAnyAsync<Exception>(() => ssl.AuthenticateAsClientAsync(new SslClientAuthenticationOptions
        {
            TargetHost = serverName,
            ApplicationProtocols = [.. alpn.Select(p => new SslApplicationProtocol(p))],
        }));
        return capture.Written.ToArray();
    }

    /// <summary>Keeps what is written; every read is end of stream, so the handshake stops after its first flight.</summary>
    private sealed class CaptureStream : Stream
    {
        public MemoryStream Written { get; } = new();

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override void Flush()
        {
        }

        public override int Read(byte[] buffer, int offset, int count) => 0;

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => Written.Write(buffer, offset, count);
    }
}
