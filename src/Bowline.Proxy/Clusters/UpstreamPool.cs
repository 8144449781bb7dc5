namespace Bowline.Proxy.Clusters;

/// <summary>
/// One cluster's connection pool (a SocketsHttpHandler) that knows how many requests are using it, so a pool a config
/// update replaced or removed drains as Envoy's do: no new requests, and closed once its last request, however long
/// (a gRPC stream, a download), has finished, instead of being cut off after a fixed delay.
/// </summary>
internal sealed class UpstreamPool(SocketsHttpHandler handler) : HttpMessageInvoker(handler, disposeHandler: true)
{
    private const int Live = 0;
    private const int Draining = 1;
    private const int Closed = 2;

    private int _active;
    private int _state;

    public bool IsClosed => Volatile.Read(ref _state) == Closed;

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
