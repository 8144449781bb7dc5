using System.Security.Cryptography;

namespace Bowline.Proxy.Http;

/// <summary>
/// Version 4 UUIDs for <c>x-request-id</c>, as Envoy's random generator makes them: random bytes from the
/// cryptographic generator, drawn in blocks per thread. <see cref="Guid.NewGuid"/> reads the kernel's generator once per
/// id, a system call on every request that does not bring its own id (a tenth of a hop's system calls in bench/).
/// </summary>
internal static class RequestIds
{
    private const int IdsPerBlock = 256;

    [ThreadStatic]
    private static byte[]? t_block;

    [ThreadStatic]
    private static int t_next;

    /// <summary>A new random (version 4, RFC 9562 variant) UUID in its 36-character form.</summary>
    public static string Next()
    {
        var block = t_block ??= new byte[16 * IdsPerBlock];
        if (t_next == 0)
        {
            RandomNumberGenerator.Fill(block);
        }
        Span<byte> id = stackalloc byte[16];
        block.AsSpan(t_next * 16, 16).CopyTo(id);
        t_next = (t_next + 1) % IdsPerBlock;
        id[6] = (byte)((id[6] & 0x0F) | 0x40);   // version 4
        id[8] = (byte)((id[8] & 0x3F) | 0x80);   // variant 10xx
        return new Guid(id, bigEndian: true).ToString();
    }
}
