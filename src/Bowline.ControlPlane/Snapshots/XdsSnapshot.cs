using Bowline.Xds;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Snapshots;

/// <summary>One resource as served: its name, its packed form and its content version.</summary>
internal sealed record NamedResource(string Name, IMessage Message, Any Packed, string Version);

/// <summary>The resources of one type in a snapshot, by name.</summary>
internal sealed class ResourceSet
{
    private ResourceSet(IReadOnlyDictionary<string, NamedResource> resources) => Resources = resources;

    public IReadOnlyDictionary<string, NamedResource> Resources { get; }

    public static ResourceSet From(IReadOnlyDictionary<string, IMessage> resources) =>
        new(resources.ToDictionary(kv => kv.Key, kv => new NamedResource(kv.Key, kv.Value, Any.Pack(kv.Value), ResourceVersion.Of(kv.Value)), StringComparer.Ordinal));

    /// <summary>The resources a subscription asks for (all of them for a wildcard subscription) and their combined version.</summary>
    public (IReadOnlyList<NamedResource> Resources, string Version) Select(IReadOnlySet<string>? names)
    {
        var selected = names is null
            ? Resources.Values.OrderBy(r => r.Name, StringComparer.Ordinal).ToList()
            : names.Order(StringComparer.Ordinal).Select(n => Resources.GetValueOrDefault(n)).OfType<NamedResource>().ToList();
        return (selected, ResourceVersion.Of(selected.Select(r => KeyValuePair.Create(r.Name, r.Version))));
    }
}

/// <summary>
/// Everything one proxy is served, per type, immutable and checked for consistency. Built by translation from a config
/// generation and a node; streams read it and never change it.
/// </summary>
internal sealed class XdsSnapshot(IReadOnlyDictionary<string, ResourceSet> byType, IReadOnlyList<string> warnings)
{
    public IReadOnlyDictionary<string, ResourceSet> ByType { get; } = byType;

    /// <summary>Problems in the user's config that translation worked around (a route to an unknown host, ...).</summary>
    public IReadOnlyList<string> Warnings { get; } = warnings;

    public ResourceSet? Get(string typeUrl) => ByType.GetValueOrDefault(typeUrl);
}
