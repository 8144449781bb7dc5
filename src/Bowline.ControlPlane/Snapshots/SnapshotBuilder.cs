using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf;

namespace Bowline.ControlPlane.Snapshots;

/// <summary>Collects the resources of one proxy's snapshot as translation produces them, then checks and freezes them.</summary>
internal sealed class SnapshotBuilder
{
    private readonly Dictionary<string, Dictionary<string, IMessage>> _byType = new(StringComparer.Ordinal)
    {
        [TypeUrls.Listener] = new(StringComparer.Ordinal),
        [TypeUrls.RouteConfiguration] = new(StringComparer.Ordinal),
        [TypeUrls.Cluster] = new(StringComparer.Ordinal),
        [TypeUrls.ClusterLoadAssignment] = new(StringComparer.Ordinal),
        [TypeUrls.Secret] = new(StringComparer.Ordinal),
    };
    private readonly List<string> _warnings = [];

    public void AddListener(Listener listener) => Add(TypeUrls.Listener, listener.Name, listener);

    public void AddRoute(RouteConfiguration route) => Add(TypeUrls.RouteConfiguration, route.Name, route);

    public void AddCluster(Cluster cluster) => Add(TypeUrls.Cluster, cluster.Name, cluster);

    public void AddEndpoints(ClusterLoadAssignment assignment) => Add(TypeUrls.ClusterLoadAssignment, assignment.ClusterName, assignment);

    public void AddSecret(Envoy.Extensions.TransportSockets.Tls.V3.Secret secret) => Add(TypeUrls.Secret, secret.Name, secret);

    /// <summary>Whether a resource of this type and name was added (shared resources, such as a cluster two listeners name).</summary>
    public bool Contains(string typeUrl, string name) => _byType[typeUrl].ContainsKey(name);

    /// <summary>What has been added of a type so far (SDS reads the listeners' and clusters' secret names).</summary>
    public IEnumerable<IMessage> Of(string typeUrl) => _byType[typeUrl].Values;

    /// <summary>A problem in the user's config that translation worked around; reported once per config generation.</summary>
    public void Warn(string message)
    {
        if (!_warnings.Contains(message))
        {
            _warnings.Add(message);
        }
    }

    /// <summary>Checks the snapshot for consistency and freezes it; throws <see cref="InvalidOperationException"/> on a broken invariant (a translation bug).</summary>
    public XdsSnapshot Build()
    {
        var problems = SnapshotConsistency.Check(_byType);
        if (problems.Count > 0)
        {
            throw new InvalidOperationException($"inconsistent snapshot: {string.Join("; ", problems)}");
        }
        return new XdsSnapshot(_byType.ToDictionary(kv => kv.Key, kv => ResourceSet.From(kv.Value), StringComparer.Ordinal), _warnings);
    }

    private void Add(string typeUrl, string name, IMessage resource)
    {
        if (!_byType[typeUrl].TryAdd(name, resource))
        {
            throw new InvalidOperationException($"translation produced two {TypeUrls.ShortName(typeUrl)} resources named {name}");
        }
    }
}
