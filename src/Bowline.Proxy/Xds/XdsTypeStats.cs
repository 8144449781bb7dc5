using Bowline.Proxy.Stats;
using Bowline.Xds;

namespace Bowline.Proxy.Xds;

/// <summary>
/// The xDS client's state for one resource type, in Envoy's subscription stat names: <c>update_attempt</c>,
/// <c>update_success</c>, <c>update_rejected</c>, <c>update_time</c> (Unix ms of the last accepted update) and
/// <c>version</c> (a hash of the accepted version_info, as Envoy's gauge). Clusters and listeners carry Envoy's own
/// prefixes (<c>cluster_manager.cds.</c>, <c>listener_manager.lds.</c>); every type also appears under
/// <c>control_plane.xds.&lt;type&gt;.</c> (Envoy keeps RDS, EDS and SDS per resource, which a single ADS stream does not).
/// </summary>
internal sealed class XdsTypeStats
{
    private readonly Stat[] _attempt;
    private readonly Stat[] _success;
    private readonly Stat[] _rejected;
    private readonly Stat[] _time;
    private readonly Stat[] _version;

    private XdsTypeStats(ProxyStats stats, string[] prefixes)
    {
        _attempt = [.. prefixes.Select(p => stats.Get(p + "update_attempt"))];
        _success = [.. prefixes.Select(p => stats.Get(p + "update_success"))];
        _rejected = [.. prefixes.Select(p => stats.Get(p + "update_rejected"))];
        _time = [.. prefixes.Select(p => stats.Get(p + "update_time"))];
        _version = [.. prefixes.Select(p => stats.Get(p + "version"))];
    }

    public static XdsTypeStats For(ProxyStats stats, string typeUrl)
    {
        // A type the client never subscribed to gets one shared name, so a hostile server cannot mint stats.
        var shortName = typeUrl is TypeUrls.Listener or TypeUrls.RouteConfiguration or TypeUrls.Cluster or TypeUrls.ClusterLoadAssignment or TypeUrls.Secret
            ? TypeUrls.ShortName(typeUrl).ToLowerInvariant() : "other";
        var own = $"control_plane.xds.{shortName}.";
        return new XdsTypeStats(stats, typeUrl switch
        {
            TypeUrls.Cluster => ["cluster_manager.cds.", own],
            TypeUrls.Listener => ["listener_manager.lds.", own],
            _ => [own],
        });
    }

    public void Attempted() => Each(_attempt, s => s.Increment());

    public void Rejected() => Each(_rejected, s => s.Increment());

    public void Accepted(string version, DateTimeOffset now)
    {
        Each(_success, s => s.Increment());
        Each(_time, s => s.Set(now.ToUnixTimeMilliseconds()));
        var hash = Hash(version);
        Each(_version, s => s.Set(hash));
    }

    private static void Each(Stat[] stats, Action<Stat> action)
    {
        foreach (var stat in stats)
        {
            action(stat);
        }
    }

    /// <summary>FNV-1a of the version text, kept positive so it reads the same as a Prometheus gauge.</summary>
    private static long Hash(string version)
    {
        var hash = 14695981039346656037UL;
        foreach (var c in version)
        {
            hash = (hash ^ c) * 1099511628211UL;
        }
        return (long)(hash & 0x1F_FFFF_FFFF_FFFFUL);
    }
}
