namespace Bowline.Proxy.Telemetry;

/// <summary>
/// Counts gRPC messages in a body as it streams past (Envoy's grpc_stats, which Istio's message counters read): each
/// message is a 5-byte prefix (compressed flag, 4-byte big-endian length) and that many bytes, split anywhere across reads.
/// </summary>
internal struct GrpcMessageCounter
{
    private int _prefixRead;
    private uint _length;
    private long _remaining;

    public long Messages { readonly get; private set; }

    public void Count(ReadOnlySpan<byte> data)
    {
        var i = 0;
        while (i < data.Length)
        {
            if (_remaining > 0)
            {
                var skip = (int)Math.Min(_remaining, data.Length - i);
                i += skip;
                _remaining -= skip;
                continue;
            }
            var b = data[i++];
            if (_prefixRead == 0)
            {
                // The flag byte starts a message.
                Messages++;
                _length = 0;
            }
            else
            {
                _length = (_length << 8) | b;
            }
            if (++_prefixRead == 5)
            {
                _prefixRead = 0;
                _remaining = _length;
            }
        }
    }
}

internal static class Grpc
{
    /// <summary><c>application/grpc</c> and its <c>+proto</c>/<c>+json</c> forms: what Istio reports as <c>request_protocol="grpc"</c>.</summary>
    public static bool IsGrpc(string? contentType) =>
        contentType is not null && contentType.StartsWith("application/grpc", StringComparison.OrdinalIgnoreCase) && (contentType.Length == 16 || contentType[16] is '+' or ';');
}
