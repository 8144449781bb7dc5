using System.Net;
using System.Net.Sockets;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// An Envoy <c>CidrRange</c>, compiled once for every place that matches addresses by prefix: filter chain matches,
/// RBAC's IP principals and permissions, the tracer's internal addresses.
/// </summary>
internal sealed record CidrRange(IPNetwork Network)
{
    public int Length => Network.PrefixLength;

    public static CidrRange From(Envoy.Config.Core.V3.CidrRange range, string where)
    {
        // IPAddress.TryParse takes "10.0.0" as 10.0.0.0; Envoy (inet_pton) refuses it, and so must a policy check.
        if (!IPAddress.TryParse(range.AddressPrefix, out var address)
            || (address.AddressFamily == AddressFamily.InterNetwork && range.AddressPrefix.Count(c => c == '.') != 3))
        {
            throw new ProxyConfigException($"{where}: '{range.AddressPrefix}' is not an IP address");
        }
        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        // Envoy: prefix_len defaults to 0 when unset (the range holds every address of its family).
        var length = range.PrefixLen is { } prefix ? (int)Math.Min(prefix, int.MaxValue) : 0;
        if (length > bits)
        {
            throw new ProxyConfigException($"{where}: prefix_len {length} is longer than an address of {range.AddressPrefix} ({bits} bits)");
        }
        if (address.IsIPv4MappedToIPv6 && length >= 96)
        {
            // ::ffff:10.0.0.0/104 is 10.0.0.0/8; a shorter prefix spans more than the mapped range and stays IPv6.
            address = address.MapToIPv4();
            length -= 96;
            bits = 32;
        }
        // Envoy masks the host bits off rather than refusing 10.1.2.3/8; IPNetwork wants them clear.
        var bytes = address.GetAddressBytes();
        for (var bit = length; bit < bits; bit++)
        {
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        }
        return new CidrRange(new IPNetwork(new IPAddress(bytes), length));
    }

    /// <summary>An IPv4 peer on a dual-stack socket (::ffff:a.b.c.d) is in an IPv4 range as a.b.c.d, and in an IPv6 range as it came.</summary>
    public bool Contains(IPAddress address) => address.IsIPv4MappedToIPv6
        ? Network.BaseAddress.AddressFamily == AddressFamily.InterNetwork ? Network.Contains(address.MapToIPv4()) : HasPrefix(address)
        : Network.Contains(address);

    /// <summary>
    /// Whether <paramref name="address"/> starts with the range's prefix, bit for bit: <see cref="IPNetwork.Contains"/>
    /// takes a mapped address as IPv4 and so never finds it in an IPv6 range narrower than ::/0.
    /// </summary>
    private bool HasPrefix(IPAddress address)
    {
        Span<byte> prefix = stackalloc byte[16];
        Span<byte> candidate = stackalloc byte[16];
        Network.BaseAddress.TryWriteBytes(prefix, out _);
        address.TryWriteBytes(candidate, out _);
        var length = Network.PrefixLength;
        var whole = length / 8;
        if (!candidate[..whole].SequenceEqual(prefix[..whole]))
        {
            return false;
        }
        var mask = (byte)(0xFF << (8 - (length % 8)));
        return length % 8 == 0 || (candidate[whole] & mask) == prefix[whole];
    }
}
