using System.Net;
using Bowline.Proxy.Http;

namespace Bowline.Proxy.Filters.Http.Router;

/// <summary>
/// Stands in for an upstream response body of undeclared length (chunked HTTP/1.1, most gRPC) so the bytes YARP copies
/// to the client are counted into the request's record as they pass. It wraps the read side, where YARP pulls from,
/// and leaves Kestrel's response body feature alone: HTTP/2 END_STREAM and trailers still go through it.
/// </summary>
internal sealed class CountedResponseContent(HttpContent inner, RequestInfo info, bool grpc = false) : HttpContent
{
    protected override async Task<Stream> CreateContentReadStreamAsync(CancellationToken cancellationToken) =>
        new CountingStream(await inner.ReadAsStreamAsync(cancellationToken).ConfigureAwait(false), info, grpc);

    protected override Task<Stream> CreateContentReadStreamAsync() => CreateContentReadStreamAsync(CancellationToken.None);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context) => inner.CopyToAsync(stream, context);

    protected override Task SerializeToStreamAsync(Stream stream, TransportContext? context, CancellationToken cancellationToken) => inner.CopyToAsync(stream, context, cancellationToken);

    protected override bool TryComputeLength(out long length)
    {
        length = 0;
        return false;
    }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            inner.Dispose();
        }
        base.Dispose(disposing);
    }

    private sealed class CountingStream(Stream inner, RequestInfo info, bool grpc) : Stream
    {
        public override bool CanRead => true;

        public override bool CanSeek => false;

        public override bool CanWrite => false;

        public override long Length => throw new NotSupportedException();

        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            info.BytesSent += read;
            if (grpc)
            {
                info.ResponseMessages.Count(buffer.Span[..read]);
            }
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            info.BytesSent += read;
            if (grpc)
            {
                info.ResponseMessages.Count(buffer[..read]);
            }
            return read;
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override void Flush()
        {
        }

        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

        public override void SetLength(long value) => throw new NotSupportedException();

        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing)
            {
                inner.Dispose();
            }
            base.Dispose(disposing);
        }

        public override ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
