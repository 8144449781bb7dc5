using System.Security.Cryptography;
using Google.Protobuf;

namespace Bowline.Xds;

/// <summary>Content-hash versions: the same resources always get the same version, so an unchanged set is never resent.</summary>
public static class ResourceVersion
{
    /// <summary>The version of one resource: the first 16 hex digits of the SHA-256 of its deterministic serialization.</summary>
    public static string Of(IMessage resource)
    {
        Span<byte> hash = stackalloc byte[32];
        SHA256.HashData(Serialize(resource), hash);
        return Convert.ToHexStringLower(hash[..8]);
    }

    /// <summary>The version of a set of named resources, independent of their order.</summary>
    public static string Of(IEnumerable<KeyValuePair<string, string>> namedVersions)
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, version) in namedVersions.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(name));
            sha.AppendData([0]);
            sha.AppendData(System.Text.Encoding.UTF8.GetBytes(version));
            sha.AppendData([0]);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset().AsSpan(0, 8));
    }

    private static byte[] Serialize(IMessage resource)
    {
        // Maps serialize in insertion order; deterministic output needs a fresh stream with the flag set.
        using var stream = new MemoryStream();
        using (var output = new CodedOutputStream(stream, leaveOpen: true) { Deterministic = true })
        {
            resource.WriteTo(output);
        }
        return stream.ToArray();
    }
}
