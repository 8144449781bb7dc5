namespace Bowline.Proxy.Clusters;

/// <summary>
/// One cluster's connection pool (a SocketsHttpHandler) that knows how many requests are using it, so a pool a config
/// update replaced or removed drains as Envoy's do: no new requests, and closed once its last request, however long
/// (a gRPC stream, a download), has finished, instead of being cut off after a fixed delay.
/// </summary>
/// <remarks>
/// <paramref name="countsRequests"/>: the pool's HTTP/1.1 connections count the requests they carry
/// (<see cref="RequestLimitedStream"/>), so each request is marked on its own flow while the handler sends it.
/// </remarks>
internal sealed class UpstreamPool(SocketsHttpHandler handler, bool countsRequests = false) : HttpMessageInvoker(handler, disposeHandler: true)
{
    private const int Live = 0;
    private const int Draining = 1;
    private const int Closed = 2;

    private int _active;
    private int _state;

    public bool IsClosed => Volatile.Read(ref _state) == Closed;

    /// <summary>Every request through the pool, the router's and a mirror's alike; pools that count nothing pay one branch.</summary>
    public override Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken) =>
        countsRequests && !Http2(request) ? SendMarkedAsync(request, cancellationToken) : base.SendAsync(request, cancellationToken);

    /// <summary>
    /// The mark is set inside this async method, so it reaches everything the handler does for the request (HTTP/1.1
    /// writes the headers and the body before SendAsync returns) and is gone once it returns.
    /// </summary>
    private async Task<HttpResponseMessage> SendMarkedAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        RequestLimitedStream.Mark.Value = new object();
        return await base.SendAsync(request, cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Whether the handler sends the request over HTTP/2 (it sees cleartext: TLS, if any, is the connect callback's, so
    /// only prior knowledge, an exact 2.0, gets HTTP/2). Those connections are not counted, nor their requests marked.
    /// </summary>
    public static bool Http2(HttpRequestMessage request) => request.Version.Major >= 2 && request.VersionPolicy != HttpVersionPolicy.RequestVersionOrLower;

    /// <summary>Called before a request is sent through the pool; pair with <see cref="Exit"/> once its response body is done.</summary>
    public void Enter() => Interlocked.Increment(ref _active);

    public void Exit()
    {
        if (Interlocked.Decrement(ref _active) == 0 && Volatile.Read(ref _state) == Draining)
        {
            Close();
        }
    }

    /// <summary>The pool left the config (after the grace period for requests that read the previous snapshot): close once idle.</summary>
    public void Drain()
    {
        Interlocked.CompareExchange(ref _state, Draining, Live);
        if (Volatile.Read(ref _active) == 0)
        {
            Close();
        }
    }

    private void Close()
    {
        if (Interlocked.CompareExchange(ref _state, Closed, Draining) == Draining)
        {
            Dispose();
        }
    }
}
