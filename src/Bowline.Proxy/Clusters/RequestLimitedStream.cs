using System.Runtime.CompilerServices;

namespace Bowline.Proxy.Clusters;

/// <summary>
/// An HTTP/1.1 upstream connection as SocketsHttpHandler sees it, under which each TCP (or TLS) connection carries at
/// most Envoy's <c>max_requests_per_connection</c> requests. The handler never says which connection a request took,
/// so the connection counts its own requests: a request is recognised by the first write made under its mark
/// (<see cref="Mark"/>, which <see cref="UpstreamPool"/> sets around the handler's SendAsync, inside which HTTP/1.1
/// writes a request's headers and body). When the (N+1)-th request begins, before any of its bytes is written, the spent
/// connection is closed and a new one opened to the same endpoint with the same settings, and the request goes out on it.
/// </summary>
/// <remarks>
/// Why the request is not refused instead: SocketsHttpHandler retries a request on another connection only when a reused
/// connection reads end of stream before the response and the request has no body; a failed write is never retried.
/// And why the handler cannot simply be told to drop the connection: a connection returned while requests wait is
/// handed straight to one of them, without the idle check a pooled connection gets. The handler keeps its connection
/// object; only what is under it changes.
/// </remarks>
internal sealed class RequestLimitedStream(Stream inner, int maxRequests, TimeSpan connectTimeout, Func<CancellationToken, ValueTask<Stream>> connect) : Stream
{
    /// <summary>
    /// The request being sent on the current async flow: an object per request, compared by reference (the request
    /// message itself is not kept, so a connection does not hold on to the last request it carried).
    /// </summary>
    public static readonly AsyncLocal<object?> Mark = new();

    private readonly Lock _sync = new();
    private Stream _inner = inner;

    /// <summary>Requests begun on <see cref="_inner"/>; only the write side touches it, and the handler writes one request at a time.</summary>
    private int _requests;

    private object? _lastMark;

    /// <summary>The connection being replaced, and when its replacement is ready: a read still pending on it moves to the new one.</summary>
    private Stream? _replacing;

    private Task? _replaced;

    /// <summary>Set once a read on the current connection has seen its end: the handler knows it is gone, so it is not replaced under it.</summary>
    private bool _ended;

    private CancellationTokenSource? _connecting;
    private bool _disposed;

    public override bool CanRead => true;

    public override bool CanWrite => true;

    public override bool CanSeek => false;

    public override long Length => throw new NotSupportedException();

    public override long Position
    {
        get => throw new NotSupportedException();
        set => throw new NotSupportedException();
    }

    public override ValueTask WriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken = default) =>
        BeginsSpentRequest() ? ReplaceAndWriteAsync(buffer, cancellationToken) : Volatile.Read(ref _inner).WriteAsync(buffer, cancellationToken);

    public override Task WriteAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        WriteAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (BeginsSpentRequest())
        {
            // Only synchronous Send writes here; the proxy forwards asynchronously.
            ReplaceAsync(CancellationToken.None).AsTask().GetAwaiter().GetResult();
        }
        Volatile.Read(ref _inner).Write(buffer);
    }

    /// <summary>Counts a request at its first write; true when the current connection has already carried its last one.</summary>
    private bool BeginsSpentRequest()
    {
        if (Mark.Value is not { } mark || ReferenceEquals(mark, _lastMark))
        {
            // Later bytes of the current request, or bytes outside any request (an upgraded connection's tunnel).
            return false;
        }
        _lastMark = mark;
        return ++_requests > maxRequests;
    }

    private async ValueTask ReplaceAndWriteAsync(ReadOnlyMemory<byte> buffer, CancellationToken cancellationToken)
    {
        await ReplaceAsync(cancellationToken).ConfigureAwait(false);
        await Volatile.Read(ref _inner).WriteAsync(buffer, cancellationToken).ConfigureAwait(false);
    }

    private async ValueTask ReplaceAsync(CancellationToken cancellationToken)
    {
        Stream spent;
        TaskCompletionSource replaced;
        CancellationTokenSource connecting;
        lock (_sync)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_ended)
            {
                // The handler has read (or will read) the end of this connection for the request: it fails or retries
                // the request as it would without this stream. Sent on a new connection, the request could run twice.
                return;
            }
            spent = _inner;
            replaced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            (_replacing, _replaced) = (spent, replaced.Task);
            connecting = _connecting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        }
        Stream next;
        try
        {
            connecting.CancelAfter(connectTimeout);
            next = await connect(connecting.Token).ConfigureAwait(false);
        }
        catch (Exception e)
        {
            lock (_sync)
            {
                (_replacing, _connecting) = (null, null);
            }
            connecting.Dispose();
            replaced.SetResult();
            if (e is OperationCanceledException && _disposed)
            {
                throw new ObjectDisposedException(nameof(RequestLimitedStream), e);
            }
            if (e is OperationCanceledException && cancellationToken.IsCancellationRequested)
            {
                // The request itself was cancelled (the client left, a route timeout): not a failure of the upstream.
                throw new OperationCanceledException(e.Message, e, cancellationToken);
            }
            // As a failed connect of the handler's own: a connection error (UF to the router, retriable as connect-failure).
            var error = e is System.Security.Authentication.AuthenticationException ? HttpRequestError.SecureConnectionError : HttpRequestError.ConnectionError;
            throw new HttpIOException(error, $"opening the connection after one reached max_requests_per_connection {maxRequests} failed: {e.Message}", e);
        }
        bool disposed;
        lock (_sync)
        {
            _connecting = null;
            disposed = _disposed;
            if (!disposed)
            {
                (_inner, _requests) = (next, 1);
            }
        }
        connecting.Dispose();
        if (disposed)
        {
            await next.DisposeAsync().ConfigureAwait(false);
            replaced.SetResult();
            throw new ObjectDisposedException(nameof(RequestLimitedStream));
        }
        // Replaced first, then closed: a read pending on the spent connection wakes to find the new one.
        await spent.DisposeAsync().ConfigureAwait(false);
        replaced.SetResult();
    }

    public override ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        var stream = Volatile.Read(ref _inner);
        var read = Read(stream, buffer, cancellationToken);
        if (read.IsCompletedSuccessfully)
        {
            var count = read.Result;
            if ((count > 0 || buffer.IsEmpty) && !IsSpent(stream))
            {
                return new ValueTask<int>(count);
            }
            read = new ValueTask<int>(count);
        }
        return ReadSlowAsync(stream, read, buffer, cancellationToken);
    }

    [AsyncMethodBuilder(typeof(PoolingAsyncValueTaskMethodBuilder<>))]
    private async ValueTask<int> ReadSlowAsync(Stream stream, ValueTask<int> read, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        while (true)
        {
            var count = 0;
            System.Runtime.ExceptionServices.ExceptionDispatchInfo? failure = null;
            try
            {
                count = await read.ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or ObjectDisposedException or OperationCanceledException)
            {
                failure = System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e);
            }
            if (failure is null && (count > 0 || buffer.IsEmpty) && !IsSpent(stream))
            {
                return count;
            }
            if (!await MovedAsync(stream).ConfigureAwait(false))
            {
                failure?.Throw();
                return 0;
            }
            stream = Volatile.Read(ref _inner);
            read = Read(stream, buffer, cancellationToken);
        }
    }

    /// <summary>
    /// Whether <paramref name="stream"/> is the connection being (or already) replaced. Bytes it delivers now answer no
    /// request of the handler's (its last response was read before the next request began: an unsolicited 408, say);
    /// handed on, they would be taken as the reply to the request just written on the new connection.
    /// </summary>
    private bool IsSpent(Stream stream) => !ReferenceEquals(stream, Volatile.Read(ref _inner)) || ReferenceEquals(stream, Volatile.Read(ref _replacing));

    /// <summary>A read whose failure, even one thrown at once (a connection closed as it was replaced), is in the task, so it can be moved.</summary>
    private static ValueTask<int> Read(Stream stream, Memory<byte> buffer, CancellationToken cancellationToken)
    {
        try
        {
            return stream.ReadAsync(buffer, cancellationToken);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException)
        {
            return ValueTask.FromException<int>(e);
        }
    }

    /// <summary>
    /// After a read on <paramref name="stream"/> ended or failed: whether it was the spent connection being replaced (the
    /// read then goes on to the new one); otherwise the end is the handler's to see, and the connection is not replaced.
    /// </summary>
    private async ValueTask<bool> MovedAsync(Stream stream)
    {
        Task? replaced;
        lock (_sync)
        {
            if (_disposed)
            {
                return false;
            }
            if (!ReferenceEquals(stream, _inner))
            {
                return true;
            }
            if (!ReferenceEquals(stream, _replacing))
            {
                _ended = true;
                return false;
            }
            replaced = _replaced;
        }
        await replaced!.ConfigureAwait(false);
        return !ReferenceEquals(stream, Volatile.Read(ref _inner));
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

    public override int Read(Span<byte> buffer) => Volatile.Read(ref _inner).Read(buffer);

    public override Task FlushAsync(CancellationToken cancellationToken) => Volatile.Read(ref _inner).FlushAsync(cancellationToken);

    public override void Flush() => Volatile.Read(ref _inner).Flush();

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing && MarkDisposed() is { } current)
        {
            current.Dispose();
        }
        base.Dispose(disposing);
    }

    public override async ValueTask DisposeAsync()
    {
        if (MarkDisposed() is { } current)
        {
            await current.DisposeAsync().ConfigureAwait(false);
        }
        await base.DisposeAsync().ConfigureAwait(false);
    }

    /// <summary>Marks the stream disposed and stops a replacement being opened; returns the connection to close (null when already closed).</summary>
    private Stream? MarkDisposed()
    {
        lock (_sync)
        {
            if (_disposed)
            {
                return null;
            }
            _disposed = true;
            // A replacement being opened is abandoned (it is only ever disposed after being cleared here, under the lock).
            _connecting?.Cancel();
            return _inner;
        }
    }
}
