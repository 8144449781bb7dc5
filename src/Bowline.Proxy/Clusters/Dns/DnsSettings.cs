using System.Net.Sockets;

namespace Bowline.Proxy.Clusters.Dns;

/// <summary>One name a DNS cluster resolves, with what each resolved address inherits.</summary>
internal sealed record DnsTarget(string Host, int Port, int Weight, int Priority);

/// <summary>
/// A STRICT_DNS or LOGICAL_DNS cluster's resolution settings. STRICT_DNS makes every address a host; LOGICAL_DNS
/// keeps one (the first address), as Envoy's logical DNS cluster does for large external services.
/// </summary>
internal sealed record DnsSettings(bool Logical, TimeSpan RefreshRate, AddressFamily? Family, IReadOnlyList<DnsTarget> Targets)
{
    public bool Equals(DnsSettings? other) =>
        other is not null && Logical == other.Logical && RefreshRate == other.RefreshRate && Family == other.Family && Targets.SequenceEqual(other.Targets);

    public override int GetHashCode() => HashCode.Combine(Logical, RefreshRate, Family, Targets.Count);
}

/// <summary>Name resolution, injectable so tests control what a name resolves to. Implementations must be thread-safe.</summary>
internal interface IDnsResolver
{
    Task<System.Net.IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken);
}

/// <summary>The operating system's resolver (getaddrinfo): /etc/hosts, then DNS.</summary>
internal sealed class SystemDnsResolver : IDnsResolver
{
    public Task<System.Net.IPAddress[]> ResolveAsync(string host, CancellationToken cancellationToken) => System.Net.Dns.GetHostAddressesAsync(host, cancellationToken);
}
