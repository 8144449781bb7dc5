using System.Buffers;

namespace Bowline.Proxy.Filters.Http.Router;

/// <summary>
/// The request body as the router reads it: counts the bytes (for the request record) and, when the route may retry
/// or mirror, keeps what it read up to a limit so another attempt can send it again. Past the limit the body streams
/// on and the request can no longer be replayed, as with Envoy's per-request buffer limit.
/// </summary>
/// <remarks>Owned by one request; reads are sequential (one attempt at a time). The buffer is pooled and returned on dispose.</remarks>
/// <param name="grpc">Set for a gRPC request: its messages are counted into the record as they pass.</param>
internal sealed class UpstreamBody(Stream inner, int bufferLimit, Bowline.Proxy.Http.RequestInfo? grpc = null) : Stream
{
    private byte[]? _buffer = bufferLimit > 0 ? ArrayPool<byte>.Shared.Rent(Math.Min(bufferLimit, 16 * 1024)) : null;
    private int _buffered;
    private int _replayPosition = -1;
    private bool _overflowed = bufferLimit <= 0;
    private bool _innerEnded;

    /// <summary>Bytes read from the client so far.</summary>
    public long BytesRead { get; private set; }

    /// <summary>Whether another attempt can be sent the same body.</summary>
    public bool CanReplay => !_overflowed;

    /// <summary>True once the client's body has been read to its end and is all in the buffer.</summary>
    public bool FullyBuffered => _innerEnded && !_overflowed;

    public ReadOnlyMemory<byte> Buffered => _buffer is null ? default : _buffer.AsMemory(0, _buffered);

    /// <summary>Starts the body over for the next attempt: the buffered bytes first, then the rest of the client's.</summary>
    public void Rewind()
    {
        if (_overflowed)
        {
            throw new InvalidOperationException("the body went past the buffer limit and cannot be replayed");
        }
        _replayPosition = 0;
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> destination, CancellationToken cancellationToken = default)
    {
        if (_replayPosition >= 0 && _replayPosition < _buffered)
        {
            var count = Math.Min(destination.Length, _buffered - _replayPosition);
            _buffer.AsMemory(_replayPosition, count).CopyTo(destination);
            _replayPosition += count;
            return count;
        }
        var read = await inner.ReadAsync(destination, cancellationToken).ConfigureAwait(false);
        if (read == 0)
        {
            _innerEnded = true;
            return 0;
        }
        BytesRead += read;
        grpc?.RequestMessages.Count(destination.Span[..read]);
        Keep(destination.Span[..read]);
        if (_replayPosition >= 0)
        {
            _replayPosition = _buffered;
        }
        return read;
    }

    public override int Read(byte[] buffer, int offset, int count) => ReadAsync(buffer.AsMemory(offset, count)).AsTask().GetAwaiter().GetResult();

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    private void Keep(ReadOnlySpan<byte> data)
    {
        if (_overflowed)
        {
            return;
        }
        if (_buffered + data.Length > bufferLimit)
        {
            _overflowed = true;
            Release();
            return;
        }
        if (_buffered + data.Length > _buffer!.Length)
        {
            var larger = ArrayPool<byte>.Shared.Rent(Math.Min(bufferLimit, Math.Max(_buffer.Length * 2, _buffered + data.Length)));
            _buffer.AsSpan(0, _buffered).CopyTo(larger);
            ArrayPool<byte>.Shared.Return(_buffer);
            _buffer = larger;
        }
        data.CopyTo(_buffer.AsSpan(_buffered));
        _buffered += data.Length;
    }

    private void Release()
    {
        if (_buffer is { } buffer)
        {
            _buffer = null;
            _buffered = 0;
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    protected override void Dispose(bool disposing)
    {
        Release();
        base.Dispose(disposing);
    }

    public override bool CanRead => true;
    public override bool CanSeek => false;
    public override bool CanWrite => false;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
}
