using System.Buffers;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.AspNetCore.Http.Features;
using Microsoft.AspNetCore.Server.Kestrel.Core.Features;

namespace Bowline.Proxy.Listeners;

/// <summary>
/// HTTP/1.1 and h2c (prior knowledge) on one cleartext port, as Envoy's codec_type AUTO serves them. Kestrel picks the
/// protocol only from TLS ALPN and falls back to HTTP/1.1 on cleartext (dotnet/aspnetcore#56984), so this connection
/// middleware peeks at the first bytes: the RFC 9113 client preface selects HTTP/2 by presenting Kestrel the ALPN
/// answer "h2"; anything else is left to HTTP/1.1. Nothing is consumed.
/// </summary>
internal static class Http2PriorKnowledge
{
    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>A client that connects and sends nothing is dropped after this long, as Kestrel's header timeout would.</summary>
    private static readonly TimeSpan FirstBytesTimeout = TimeSpan.FromSeconds(30);

    public static Func<ConnectionDelegate, ConnectionDelegate> Middleware => next => async connection =>
    {
        // The peek happens before Kestrel's HTTP layer runs, so its timeouts and graceful close do not apply yet: this
        // wait honours the close request of a drain and a first-bytes timeout itself.
        var closing = connection.Features.Get<IConnectionLifetimeNotificationFeature>()?.ConnectionClosedRequested ?? CancellationToken.None;
        using var wait = CancellationTokenSource.CreateLinkedTokenSource(connection.ConnectionClosed, closing);
        wait.CancelAfter(FirstBytesTimeout);
        bool http2;
        try
        {
            http2 = await StartsWithPrefaceAsync(connection, wait.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        if (http2)
        {
            connection.Features.Set<ITlsConnectionFeature>(CleartextMarker.Instance);
            connection.Features.Set<ITlsApplicationProtocolFeature>(CleartextMarker.Instance);
            Http.PrematureResetGuard.Attach(connection);
        }
        await next(connection).ConfigureAwait(false);
    };

    private static async ValueTask<bool> StartsWithPrefaceAsync(ConnectionContext connection, CancellationToken cancellationToken)
    {
        var input = connection.Transport.Input;
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            var length = (int)Math.Min(buffer.Length, Preface.Length);
            var matchesSoFar = MatchesPreface(buffer.Slice(0, length));
            if (!matchesSoFar || length == Preface.Length || result.IsCompleted)
            {
                // Leave every byte for the HTTP codec.
                input.AdvanceTo(buffer.Start);
                return matchesSoFar && length == Preface.Length;
            }
            // A prefix of the preface: mark it examined so the next read waits for more bytes.
            input.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    private static bool MatchesPreface(in ReadOnlySequence<byte> head)
    {
        Span<byte> bytes = stackalloc byte[24];
        head.CopyTo(bytes);
        return bytes[..(int)head.Length].SequenceEqual(Preface[..(int)head.Length]);
    }

    /// <summary>Tells Kestrel's protocol selection "h2"; the connection stays cleartext (no certificate, no handshake feature).</summary>
    private sealed class CleartextMarker : ITlsConnectionFeature, ITlsApplicationProtocolFeature
    {
        public static readonly CleartextMarker Instance = new();

        public X509Certificate2? ClientCertificate
        {
            get => null;
            set { }
        }

        public ReadOnlyMemory<byte> ApplicationProtocol => "h2"u8.ToArray();

        public Task<X509Certificate2?> GetClientCertificateAsync(CancellationToken cancellationToken) => Task.FromResult<X509Certificate2?>(null);
    }
}
