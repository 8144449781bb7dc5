using System.IO.Pipelines;
using System.Net;
using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Listeners.ListenerFilters;
using Bowline.Proxy.Tls;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Listeners;

/// <summary>
/// The connection-level half of a listener, in Envoy's order: accept, run the listener filters over the first bytes
/// (TLS inspector: SNI and ALPN; HTTP inspector: h2c or HTTP/1.x), pick the filter chain by
/// <c>filter_chain_match</c>, terminate TLS with the chain's transport socket (certificates from the secret store,
/// the peer verified and its SPIFFE identity taken), and only then hand the connection to the HTTP codec with the
/// chain and the peer on it (<see cref="ConnectionChain"/>). Nothing the inspectors read is consumed.
/// </summary>
internal sealed partial class ConnectionAcceptor(Func<CompiledListener> listener, SecretStore secrets, ILogger logger)
{
    /// <summary>A client that connects and sends nothing is dropped after this long when nothing else bounds the wait.</summary>
    private static readonly TimeSpan FirstBytesTimeout = TimeSpan.FromSeconds(30);

    /// <summary>The TLS handshake must finish within this (Envoy bounds it with the transport socket connect timeout).</summary>
    private static readonly TimeSpan HandshakeTimeout = TimeSpan.FromSeconds(10);

    public Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => connection => AcceptAsync(connection, next);

    private async Task AcceptAsync(ConnectionContext connection, ConnectionDelegate next)
    {
        if (connection.Features.Get<IConnectionSocketFeature>()?.Socket is { } socket)
        {
            DataPathThreading.Adopt(socket);
        }
        var current = listener();
        current.Stats.ConnectionsTotal.Increment();
        // Before Kestrel's HTTP layer runs its timeouts and graceful close do not apply: this honours a drain's close
        // request and bounds the wait for first bytes itself.
        var closing = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, closing);
        wait.CancelAfter(current.TlsInspector || current.HttpInspector ? current.ListenerFiltersTimeout : FirstBytesTimeout);
        ConnectionMetadata metadata;
        bool http2Preface;
        try
        {
            (metadata, http2Preface) = await InspectAsync(connection, current, wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            if (!connection.ConnectionClosed.IsCancellationRequested && !closing.IsCancellationRequested)
            {
                current.Stats.ListenerFilterTimeout.Increment();
            }
            return;
        }
        var chain = current.Match(metadata);
        if (chain is null)
        {
            current.Stats.NoFilterChainMatch.Increment();
            LogNoChain(logger, current.Name, metadata.DestinationPort, metadata.TransportProtocol, metadata.ServerName ?? "-", string.Join(",", metadata.ApplicationProtocols));
            return;
        }
        if (chain.Tls is not { } tls)
        {
            var plain = new ConnectionChain(current, chain, metadata, null);
            connection.Features.Set(plain);
            if (chain.Tcp is { } tcp)
            {
                if (Admits(plain, current, chain))
                {
                    await Filters.Network.TcpProxy.TcpProxySession.RunAsync(connection.Transport, tcp, plain, secrets, logger, closing).ConfigureAwait(false);
                }
                return;
            }
            if (http2Preface || metadata.ApplicationProtocols.Contains("h2c"))
            {
                MarkHttp2(connection);
            }
            await next(connection).ConfigureAwait(false);
            return;
        }
        await TerminateTlsAsync(connection, next, current, chain, tls, metadata, closing).ConfigureAwait(false);
    }

    /// <summary>Runs the listener filters the listener has; without any, only the h2c preface is looked for (Envoy's codec AUTO).</summary>
    private static async Task<(ConnectionMetadata, bool Http2Preface)> InspectAsync(ConnectionContext connection, CompiledListener current, CancellationToken cancellationToken)
    {
        var local = connection.LocalEndPoint as IPEndPoint;
        var remote = connection.RemoteEndPoint as IPEndPoint;
        var transport = ConnectionMetadata.RawBuffer;
        string? serverName = null;
        IReadOnlyList<string> protocols = [];
        var preface = false;
        var input = connection.Transport.Input;
        var port = local?.Port ?? 0;
        var tlsDone = !current.RunsTlsInspector(port);
        var runsHttpInspector = current.RunsHttpInspector(port);
        // Without an inspector only an HTTP chain needs the first bytes (the h2c preface); a connection bound for a TCP
        // proxy reads nothing first, so server-first protocols (SMTP, MySQL) get their banner through.
        var httpDone = !runsHttpInspector && !(current.ServesHttp && current.Match(new ConnectionMetadata(local?.Address ?? IPAddress.None, port, remote?.Address ?? IPAddress.None, remote?.Port ?? 0, transport, null, []))?.Http is not null);
        if (tlsDone && httpDone)
        {
            return (new ConnectionMetadata(local?.Address ?? IPAddress.None, local?.Port ?? 0, remote?.Address ?? IPAddress.None, remote?.Port ?? 0, transport, serverName, protocols), preface);
        }
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (!tlsDone)
            {
                switch (TlsInspector.Inspect(buffer, out var hello))
                {
                    case TlsInspector.Verdict.Hello:
                        transport = ConnectionMetadata.Tls;
                        serverName = hello!.ServerName;
                        protocols = hello.ApplicationProtocols;
                        tlsDone = httpDone = true;
                        break;
                    case TlsInspector.Verdict.NotTls:
                        tlsDone = true;
                        break;
                    default:
                        tlsDone = result.IsCompleted || buffer.Length >= TlsInspector.MaxHelloBytes + 5;
                        break;
                }
            }
            if (tlsDone && !httpDone)
            {
                var http = HttpInspector.Inspect(buffer, result.IsCompleted);
                if (http is not null)
                {
                    preface = http.Count == 1 && http[0] == "h2c";
                    if (runsHttpInspector)
                    {
                        protocols = http;
                    }
                    httpDone = true;
                }
            }
            if ((tlsDone && httpDone) || result.IsCompleted)
            {
                // Leave every byte for the TLS layer or the HTTP codec.
                input.AdvanceTo(buffer.Start);
                return (new ConnectionMetadata(local?.Address ?? IPAddress.None, local?.Port ?? 0, remote?.Address ?? IPAddress.None, remote?.Port ?? 0, transport, serverName, protocols), preface);
            }
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private async Task TerminateTlsAsync(ConnectionContext connection, ConnectionDelegate next, CompiledListener current, CompiledFilterChain chain, DownstreamTls tls, ConnectionMetadata metadata, CancellationToken closing)
    {
        var stats = current.Stats;
        PeerVerifier.Failure failure = PeerVerifier.Failure.None;
        string? reason = null;
        PeerIdentity? peer = null;
        // Counted as the verdict is reached, before the alert goes out: whoever sees the handshake fail sees the count.
        var (options, missing) = tls.ServerOptions(secrets, metadata.ApplicationProtocols, (f, r, p) =>
        {
            (failure, reason, peer) = (f, r, p);
            switch (f)
            {
                case PeerVerifier.Failure.NoCertificate:
                    stats.NoCertificate.Increment();
                    break;
                case PeerVerifier.Failure.Error:
                    stats.VerifyError.Increment();
                    break;
                case PeerVerifier.Failure.San:
                    stats.VerifySan.Increment();
                    break;
            }
        });
        if (options is null)
        {
            stats.SecretMissing.Increment();
            LogSecretMissing(logger, current.Name, chain.Name, missing!);
            return;
        }
        var original = connection.Transport;
        var ssl = new SslStream(new DuplexStream(original), leaveInnerStreamOpen: true);
        try
        {
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed);
            timeout.CancelAfter(HandshakeTimeout);
            try
            {
                await ssl.AuthenticateAsServerAsync(options, timeout.Token).ConfigureAwait(false);
            }
            catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException or OperationCanceledException)
            {
                if (failure == PeerVerifier.Failure.None)
                {
                    stats.ConnectionErrors.Increment();
                }
                LogHandshakeFailed(logger, current.Name, chain.Name, metadata.SourceAddress.ToString(), reason ?? e.Message);
                return;
            }
            stats.Handshakes.Increment();
            var negotiated = ssl.NegotiatedApplicationProtocol;
            var reader = PipeReader.Create(ssl, new StreamPipeReaderOptions(leaveOpen: true));
            var writer = PipeWriter.Create(ssl, new StreamPipeWriterOptions(leaveOpen: true));
            connection.Transport = new Pipe(reader, writer);
            var secured = new ConnectionChain(current, chain, metadata, peer) { LocalUri = LocalUri(ssl.LocalCertificate) };
            connection.Features.Set(secured);
            var tlsFeature = new TlsFeature(peer?.Certificate, negotiated);
            connection.Features.Set<ITlsConnectionFeature>(tlsFeature);
            if (chain.Tcp is { } tcp)
            {
                if (Admits(secured, current, chain))
                {
                    await Filters.Network.TcpProxy.TcpProxySession.RunAsync(connection.Transport, tcp, secured, secrets, logger, closing).ConfigureAwait(false);
                }
                return;
            }
            // Kestrel picks HTTP/2 from ALPN "h2"; mesh mTLS negotiates istio-* or nothing, so the decrypted preface decides.
            var http2 = negotiated == SslApplicationProtocol.Http2 || (negotiated != SslApplicationProtocol.Http11 && await StartsWithPrefaceAsync(reader, connection.ConnectionClosed).ConfigureAwait(false));
            tlsFeature.Http2 = http2;
            connection.Features.Set<ITlsApplicationProtocolFeature>(tlsFeature);
            await next(connection).ConfigureAwait(false);
        }
        finally
        {
            connection.Transport = original;
            await ssl.DisposeAsync().ConfigureAwait(false);
        }
    }

    /// <summary>The URI SAN of the certificate this side presented (XFCC's <c>By</c>), or null.</summary>
    private static string? LocalUri(X509Certificate? certificate) => certificate switch
    {
        X509Certificate2 local => SpiffeId.SubjectAltNames(local).Uris.FirstOrDefault(),
        null => null,
        _ => SpiffeId.SubjectAltNames(X509CertificateLoader.LoadCertificate(certificate.GetRawCertData())).Uris.FirstOrDefault(),
    };

    private static async Task<bool> StartsWithPrefaceAsync(PipeReader input, CancellationToken cancellationToken)
    {
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        wait.CancelAfter(FirstBytesTimeout);
        try
        {
            while (true)
            {
                var result = await input.ReadAsync(wait.Token).ConfigureAwait(false);
                var verdict = HttpInspector.Inspect(result.Buffer, result.IsCompleted);
                if (verdict is not null || result.IsCompleted)
                {
                    input.AdvanceTo(result.Buffer.Start);
                    return verdict is [ "h2c" ];
                }
                input.AdvanceTo(result.Buffer.Start, result.Buffer.End);
            }
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    private static void MarkHttp2(ConnectionContext connection)
    {
        var marker = new TlsFeature(null, SslApplicationProtocol.Http2) { Http2 = true };
        connection.Features.Set<ITlsConnectionFeature>(marker);
        connection.Features.Set<ITlsApplicationProtocolFeature>(marker);
        Http.PrematureResetGuard.Attach(connection);
    }

    /// <summary>The chain's network RBAC filters, in order; the first that denies closes the connection before a byte moves.</summary>
    private bool Admits(ConnectionChain connection, CompiledListener listener, CompiledFilterChain chain)
    {
        foreach (var rbac in chain.NetworkRbac)
        {
            var (allowed, policy) = rbac.Decide(connection);
            if (!allowed)
            {
                LogRbacDenied(logger, listener.Name, chain.Name, connection.Metadata.SourceAddress?.ToString() ?? "-", connection.Peer?.Principal ?? "no verified identity", policy ?? "none");
                return false;
            }
        }
        return true;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "listener {Listener} filter chain {Chain}: connection from {Source} ({Peer}) denied by RBAC (matched policy {Policy}); closed")]
    private static partial void LogRbacDenied(ILogger logger, string listener, string chain, string source, string peer, string policy);

    [LoggerMessage(Level = LogLevel.Debug, Message = "listener {Listener}: no filter chain matches a connection to port {Port} ({Transport}, server name {ServerName}, protocols {Protocols}); closed")]
    private static partial void LogNoChain(ILogger logger, string listener, int port, string transport, string serverName, string protocols);

    [LoggerMessage(Level = LogLevel.Warning, Message = "listener {Listener} filter chain {Chain}: TLS refused: {Missing} has not arrived yet; the chain serves once it has")]
    private static partial void LogSecretMissing(ILogger logger, string listener, string chain, string missing);

    [LoggerMessage(Level = LogLevel.Information, Message = "listener {Listener} filter chain {Chain}: TLS handshake with {Source} failed: {Reason}")]
    private static partial void LogHandshakeFailed(ILogger logger, string listener, string chain, string source, string reason);

    /// <summary>The TLS facts Kestrel and the HTTP filters read: the client certificate and the protocol to speak.</summary>
    private sealed class TlsFeature(X509Certificate2? clientCertificate, SslApplicationProtocol negotiated) : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public bool Http2 { get; set; }

        public X509Certificate2? ClientCertificate
        {
            get => clientCertificate;
            set { }
        }

        public ReadOnlyMemory<byte> ApplicationProtocol => Http2 ? SslApplicationProtocol.Http2.Protocol : negotiated == default ? SslApplicationProtocol.Http11.Protocol : negotiated.Protocol;

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult(clientCertificate);
    }

    private sealed class Pipe(PipeReader input, PipeWriter output) : IDuplexPipe
    {
        public PipeReader Input { get; } = input;

        public PipeWriter Output { get; } = output;
    }

    /// <summary>The connection's transport as a stream for SslStream, which reads the bytes the inspectors left.</summary>
    private sealed class DuplexStream(IDuplexPipe pipe) : Stream
    {
        private readonly Stream _input = pipe.Input.AsStream(leaveOpen: true);
        private readonly Stream _output = pipe.Output.AsStream(leaveOpen: true);

        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => true;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default) => _input.ReadAsync(buffer, cancellationToken);

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _input.ReadAsync(buffer, offset, count, cancellationToken);

        public override int Read(byte[] buffer, int offset, int count) => _input.Read(buffer, offset, count);

        public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) => _output.WriteAsync(buffer, cancellationToken);

        public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) => _output.WriteAsync(buffer, offset, count, cancellationToken);

        public override void Write(byte[] buffer, int offset, int count) => _output.Write(buffer, offset, count);

        public override Task FlushAsync(CancellationToken cancellationToken) => _output.FlushAsync(cancellationToken);

        public override void Flush() => _output.Flush();

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();
    }
}

/// <summary>
/// Set on a connection once its filter chain is chosen: the listener it was matched against, the chain, what the
/// listener filters saw and the verified peer. Requests read the chain from here; after a listener update the
/// connection is matched again against the new listener, once.
/// </summary>
internal sealed class ConnectionChain(CompiledListener listener, CompiledFilterChain chain, ConnectionMetadata metadata, PeerIdentity? peer)
{
    private readonly bool _terminatedTls = chain.Tls is not null;
    private (CompiledListener Listener, CompiledFilterChain? Chain) _current = (listener, chain);

    public ConnectionMetadata Metadata { get; } = metadata;

    /// <summary>Null for a cleartext connection, or a TLS connection whose client presented no certificate.</summary>
    public PeerIdentity? Peer { get; } = peer;

    /// <summary>The URI SAN of the certificate this proxy presented on the connection (XFCC's <c>By</c>); null without TLS.</summary>
    public string? LocalUri { get; init; }

    /// <summary>
    /// The XFCC element last rendered for this connection's peer, with the settings it was rendered under: the peer and
    /// <see cref="LocalUri"/> are fixed for the connection, so its requests reuse it until the settings change.
    /// </summary>
    public Http.ClientCertElement? ClientCertElement
    {
        get => Volatile.Read(ref _clientCertElement);
        set => Volatile.Write(ref _clientCertElement, value);
    }

    private Http.ClientCertElement? _clientCertElement;

    /// <summary>
    /// The chain under <paramref name="listener"/>: the one matched at accept time while the listener is unchanged,
    /// else the connection's match under the new listener, once (null when it has none: the connection no longer
    /// belongs). A connection never moves between a TLS chain and a cleartext one: its transport was fixed at accept.
    /// </summary>
    public CompiledFilterChain? Resolve(CompiledListener listener)
    {
        var current = _current;
        if (ReferenceEquals(current.Listener, listener))
        {
            return current.Chain;
        }
        var matched = listener.Match(Metadata);
        if (matched is not null && (matched.Tls is not null) != _terminatedTls)
        {
            matched = null;
        }
        _current = (listener, matched);
        return matched;
    }
}
