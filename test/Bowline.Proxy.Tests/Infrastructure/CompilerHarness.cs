using Bowline.Proxy.Clusters;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Routing;
using Bowline.Proxy.Stats;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Google.Protobuf;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>
/// A <see cref="ProxyConfigCompiler"/> with its collaborators, fed resources the way <c>ConfigApplier</c> feeds it:
/// by type URL, as accepted. The fake clock keeps retired connection pools from being disposed mid-test.
/// </summary>
internal sealed class CompilerHarness : IDisposable
{
    private long _version;

    public CompilerHarness()
    {
        Pools = new ConnectionPools(Time, new Random(42));
        Compiler = new ProxyConfigCompiler(Pools, Stats);
    }

    public FakeTimeProvider Time { get; } = new();

    public ProxyStats Stats { get; } = new();

    public ConnectionPools Pools { get; }

    public ProxyConfigCompiler Compiler { get; }

    /// <summary>Compiles a state of the world made of <paramref name="resources"/> (listeners, routes, clusters, endpoints in any order).</summary>
    public ProxySnapshot Compile(params IMessage[] resources)
    {
        var accepted = new Dictionary<string, Dictionary<string, AcceptedResource>>(StringComparer.Ordinal);
        foreach (var resource in resources)
        {
            var (typeUrl, name) = resource switch
            {
                Listener l => (TypeUrls.Listener, l.Name),
                RouteConfiguration r => (TypeUrls.RouteConfiguration, r.Name),
                Cluster c => (TypeUrls.Cluster, c.Name),
                ClusterLoadAssignment a => (TypeUrls.ClusterLoadAssignment, a.ClusterName),
                _ => throw new ArgumentException($"not an xDS resource: {resource.Descriptor.FullName}", nameof(resources)),
            };
            if (!accepted.TryGetValue(typeUrl, out var ofType))
            {
                accepted[typeUrl] = ofType = new Dictionary<string, AcceptedResource>(StringComparer.Ordinal);
            }
            ofType.Add(name, new AcceptedResource(name, resource, "1", Time.GetUtcNow()));
        }
        var byType = accepted.ToDictionary(kv => kv.Key, kv => (IReadOnlyDictionary<string, AcceptedResource>)kv.Value, StringComparer.Ordinal);
        var versions = accepted.Keys.ToDictionary(k => k, _ => "1", StringComparer.Ordinal);
        return Compiler.Compile(++_version, byType, versions);
    }

    /// <summary>Compiles <paramref name="routes"/> the way a sidecar receives them, behind a listener's RDS, and returns the table.</summary>
    public RouteTable CompileRoutes(RouteConfiguration routes, params IMessage[] clustersAndEndpoints)
    {
        var snapshot = Compile([EnvoyResources.HttpListener("routes-under-test", 0, routes.Name), routes, .. clustersAndEndpoints]);
        return snapshot.Listeners["routes-under-test"].ChainFor(0)!.Routes!;
    }

    /// <summary>Compiles a one-route table (virtual host <c>*</c>) and returns that route.</summary>
    public RouteEntry CompileRoute(Route route, params IMessage[] clustersAndEndpoints) =>
        CompileRoutes(EnvoyResources.RouteConfig("80", EnvoyResources.VirtualHost("all", ["*"], route)), clustersAndEndpoints)
            .FindVirtualHost("any")!.Routes.Single();

    public void Dispose() => Pools.Dispose();
}
