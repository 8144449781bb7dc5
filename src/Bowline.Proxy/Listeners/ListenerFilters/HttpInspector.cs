using System.Buffers;

namespace Bowline.Proxy.Listeners.ListenerFilters;

/// <summary>
/// Envoy's <c>envoy.filters.listener.http_inspector</c> on a cleartext connection: the HTTP/2 prior-knowledge preface
/// means <c>h2c</c>, a request line ending in <c>HTTP/1.x</c> means <c>http/1.1</c> (or <c>http/1.0</c>); anything
/// else is not HTTP and leaves the application protocols empty (a TCP chain can then take it).
/// </summary>
internal static class HttpInspector
{
    private static ReadOnlySpan<byte> Preface => "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"u8;

    /// <summary>How far a request line is looked for, as Envoy's inspector bounds its peek.</summary>
    public const int MaxPeekBytes = 8 * 1024;

    private static readonly string[] Http2 = ["h2c"];
    private static readonly string[] Http11 = ["http/1.1"];
    private static readonly string[] Http10 = ["http/1.0"];

    /// <summary>
    /// Null while more bytes could still change the answer; otherwise the application protocols (empty when not HTTP).
    /// </summary>
    public static IReadOnlyList<string>? Inspect(in ReadOnlySequence<byte> head, bool completed)
    {
        var length = (int)Math.Min(head.Length, MaxPeekBytes);
        var bytes = length <= 1024 ? stackalloc byte[length] : new byte[length];
        head.Slice(0, length).CopyTo(bytes);
        var preface = Math.Min(length, Preface.Length);
        if (bytes[..preface].SequenceEqual(Preface[..preface]))
        {
            if (preface == Preface.Length)
            {
                return Http2;
            }
            return completed ? [] : null;
        }
        var lineEnd = bytes.IndexOf("\r\n"u8);
        if (lineEnd < 0)
        {
            return completed || length == MaxPeekBytes || !LooksLikeMethod(bytes) ? [] : null;
        }
        var line = bytes[..lineEnd];
        if (line.EndsWith(" HTTP/1.1"u8))
        {
            return Http11;
        }
        return line.EndsWith(" HTTP/1.0"u8) ? Http10 : [];
    }

    /// <summary>A token of upper-case letters so far: could still become a request line.</summary>
    private static bool LooksLikeMethod(ReadOnlySpan<byte> bytes)
    {
        foreach (var b in bytes)
        {
            if (b == ' ')
            {
                return true;
            }
            if (b is < (byte)'A' or > (byte)'Z')
            {
                return false;
            }
        }
        return true;
    }
}
