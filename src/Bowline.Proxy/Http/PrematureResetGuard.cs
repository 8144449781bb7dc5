using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Connections.Features;

namespace Bowline.Proxy.Http;

/// <summary>
/// Envoy's premature-reset limit against HTTP/2 rapid reset (CVE-2023-44487): counts, per connection, streams the
/// client reset before their response completed. Once the connection has seen enough streams and at least half of
/// them were reset early, it is closed (Kestrel sends GOAWAY) and counted; an attacker gets one connection's worth of
/// streams, not millions. Streams already reset when the proxy sees them never start an upstream request.
/// </summary>
/// <remarks>One per HTTP/2 connection, in the connection's items; updated from that connection's streams with atomics.</remarks>
internal sealed class PrematureResetGuard(ConnectionContext connection)
{
    /// <summary>Envoy's premature_reset_total_stream_count default: judge a connection after this many streams.</summary>
    public const int StreamsBeforeJudging = 500;

    private static readonly object Key = new();

    private int _streams;
    private int _premature;
    private int _closed;

    /// <summary>Gives a new connection its guard (called from the connection middleware for HTTP/2 connections).</summary>
    public static void Attach(ConnectionContext connection) => connection.Items[Key] = new PrematureResetGuard(connection);

    public static PrematureResetGuard? Of(HttpContext context) =>
        context.Features.Get<IConnectionItemsFeature>()?.Items.TryGetValue(Key, out var guard) == true ? guard as PrematureResetGuard : null;

    /// <summary>Records one finished stream; returns true once, when this connection has just been closed for abuse.</summary>
    public bool Record(bool resetEarly)
    {
        var streams = Interlocked.Increment(ref _streams);
        var premature = resetEarly ? Interlocked.Increment(ref _premature) : Volatile.Read(ref _premature);
        if (streams < StreamsBeforeJudging || premature * 2 < streams || Interlocked.Exchange(ref _closed, 1) == 1)
        {
            return false;
        }
        connection.Abort(new ConnectionAbortedException("too many streams reset by the client before completion (HTTP/2 rapid reset)"));
        return true;
    }
}
