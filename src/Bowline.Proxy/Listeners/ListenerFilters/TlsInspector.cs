using System.Buffers;
using System.Buffers.Binary;
using System.Text;

namespace Bowline.Proxy.Listeners.ListenerFilters;

/// <summary>What a TLS ClientHello says before the handshake: the server name (SNI) and the offered ALPN protocols.</summary>
internal sealed record ClientHello(string? ServerName, IReadOnlyList<string> ApplicationProtocols);

/// <summary>
/// Envoy's <c>envoy.filters.listener.tls_inspector</c>: reads (without consuming) a connection's first TLS record and,
/// when it is a ClientHello, the SNI and ALPN extensions, so filter-chain matching can tell mesh mTLS (ALPN
/// <c>istio-*</c>) from an application's own TLS and from plaintext on the same port. Parsing is bounded: a hello
/// larger than <see cref="MaxHelloBytes"/> or malformed in any way is simply "not TLS we can read".
/// </summary>
internal static class TlsInspector
{
    /// <summary>Envoy's default max_client_hello_size.</summary>
    public const int MaxHelloBytes = 16 * 1024;

    /// <summary>The verdict on the bytes so far.</summary>
    public enum Verdict
    {
        /// <summary>The bytes so far could still be a ClientHello: read more.</summary>
        NeedMore,

        /// <summary>A complete ClientHello was parsed.</summary>
        Hello,

        /// <summary>Not TLS (or a hello we will not parse): treat as raw_buffer.</summary>
        NotTls,
    }

    /// <summary>Inspects <paramref name="head"/>, the connection's first bytes.</summary>
    public static Verdict Inspect(in ReadOnlySequence<byte> head, out ClientHello? hello)
    {
        hello = null;
        if (head.Length == 0)
        {
            return Verdict.NeedMore;
        }
        Span<byte> header = stackalloc byte[5];
        var available = (int)Math.Min(head.Length, 5);
        head.Slice(0, available).CopyTo(header);
        // A TLS record: content type 22 (handshake), major version 3.
        if (header[0] != 22 || (available > 1 && header[1] != 3))
        {
            return Verdict.NotTls;
        }
        if (available < 5)
        {
            return Verdict.NeedMore;
        }
        var recordLength = BinaryPrimitives.ReadUInt16BigEndian(header[3..]);
        if (recordLength < 4 || recordLength > MaxHelloBytes)
        {
            return Verdict.NotTls;
        }
        if (head.Length < 5 + recordLength)
        {
            return Verdict.NeedMore;
        }
        var record = head.Slice(5, recordLength).ToArray();
        // Handshake type 1 (ClientHello) and its 24-bit length. A hello split over several records is not parsed:
        // Envoy handles it, browsers never send one on a first flight this size.
        if (record[0] != 1)
        {
            return Verdict.NotTls;
        }
        var helloLength = (record[1] << 16) | (record[2] << 8) | record[3];
        if (helloLength > record.Length - 4)
        {
            return Verdict.NotTls;
        }
        hello = Parse(record.AsSpan(4, helloLength));
        return hello is null ? Verdict.NotTls : Verdict.Hello;
    }

    private static ClientHello? Parse(ReadOnlySpan<byte> body)
    {
        var reader = new Reader(body);
        // legacy_version (2), random (32), session id, cipher suites, compression methods.
        if (!reader.Skip(34) || !reader.SkipVector(1) || !reader.SkipVector(2) || !reader.SkipVector(1))
        {
            return null;
        }
        if (reader.Remaining == 0)
        {
            return new ClientHello(null, []);
        }
        if (!reader.TryVector(2, out var extensions))
        {
            return null;
        }
        string? serverName = null;
        var protocols = new List<string>();
        var ext = new Reader(extensions);
        while (ext.Remaining > 0)
        {
            if (!ext.TryUInt16(out var type) || !ext.TryVector(2, out var data))
            {
                return null;
            }
            switch (type)
            {
                case 0:
                    serverName = ServerNameOf(data);
                    break;
                case 16:
                    if (!ProtocolsOf(data, protocols))
                    {
                        return null;
                    }
                    break;
            }
        }
        return new ClientHello(serverName, protocols);
    }

    /// <summary>The server_name extension: a list of (type, name); type 0 is a host name.</summary>
    private static string? ServerNameOf(ReadOnlySpan<byte> data)
    {
        var reader = new Reader(data);
        if (!reader.TryVector(2, out var list))
        {
            return null;
        }
        var names = new Reader(list);
        while (names.Remaining > 0)
        {
            if (!names.TryByte(out var nameType) || !names.TryVector(2, out var name))
            {
                return null;
            }
            if (nameType == 0 && name.Length > 0 && Ascii.IsValid(name))
            {
                // Envoy lower-cases the SNI before matching server_names.
                return Encoding.ASCII.GetString(name).ToLowerInvariant();
            }
        }
        return null;
    }

    private static bool ProtocolsOf(ReadOnlySpan<byte> data, List<string> protocols)
    {
        var reader = new Reader(data);
        if (!reader.TryVector(2, out var list))
        {
            return false;
        }
        var names = new Reader(list);
        while (names.Remaining > 0)
        {
            if (!names.TryVector(1, out var name))
            {
                return false;
            }
            protocols.Add(Encoding.ASCII.GetString(name));
        }
        return true;
    }

    /// <summary>A bounds-checked reader over TLS's length-prefixed vectors.</summary>
    private ref struct Reader(ReadOnlySpan<byte> data)
    {
        private ReadOnlySpan<byte> _data = data;

        public readonly int Remaining => _data.Length;

        public bool Skip(int count)
        {
            if (_data.Length < count)
            {
                return false;
            }
            _data = _data[count..];
            return true;
        }

        public bool TryByte(out byte value)
        {
            value = 0;
            if (_data.Length < 1)
            {
                return false;
            }
            value = _data[0];
            _data = _data[1..];
            return true;
        }

        public bool TryUInt16(out int value)
        {
            value = 0;
            if (_data.Length < 2)
            {
                return false;
            }
            value = BinaryPrimitives.ReadUInt16BigEndian(_data);
            _data = _data[2..];
            return true;
        }

        public bool TryVector(int lengthBytes, out ReadOnlySpan<byte> vector)
        {
            vector = default;
            int length;
            if (lengthBytes == 1)
            {
                if (!TryByte(out var b))
                {
                    return false;
                }
                length = b;
            }
            else if (!TryUInt16(out length))
            {
                return false;
            }
            if (_data.Length < length)
            {
                return false;
            }
            vector = _data[..length];
            _data = _data[length..];
            return true;
        }

        public bool SkipVector(int lengthBytes) => TryVector(lengthBytes, out _);
    }
}
