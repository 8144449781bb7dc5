using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Route.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>DNS ServiceEntries as Istio's clusters: STRICT_DNS or LOGICAL_DNS, names inline.</summary>
public sealed class ServiceEntryDnsTranslationTests
{
    private static string Entry(string resolution, string endpoints) => $"""
        apiVersion: networking.istio.io/v1
        kind: ServiceEntry
        metadata: {"{"}name: api{"}"}
        spec:
          hosts: [api.example.com]
          location: MESH_EXTERNAL
          resolution: {resolution}
          ports: [{"{"}number: 80, name: http, protocol: HTTP{"}"}]
        {endpoints}
        """;

    [Theory]
    [InlineData("DNS", "  endpoints: [{address: a.example.net}, {address: b.example.net, ports: {http: 8080}}]", Cluster.Types.DiscoveryType.StrictDns, "a.example.net:80,b.example.net:8080")]
    [InlineData("DNS", "", Cluster.Types.DiscoveryType.StrictDns, "api.example.com:80")]
    [InlineData("DNS_ROUND_ROBIN", "  endpoints: [{address: a.example.net}]", Cluster.Types.DiscoveryType.LogicalDns, "a.example.net:80")]
    public void Translate_DnsServiceEntry_IsADnsClusterWithTheNamesInline(string resolution, string endpoints, Cluster.Types.DiscoveryType type, string expected)
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Entry(resolution, endpoints)), ProxyNode.From(TestNodes.ProductpageSidecar()));

        var name = "outbound|80||api.example.com";
        var cluster = Assert.IsType<Cluster>(snapshot.Get(TypeUrls.Cluster)!.Resources[name].Message);
        Assert.Equal(type, cluster.Type);
        Assert.True(cluster.RespectDnsTtl);
        Assert.Null(cluster.EdsClusterConfig);
        var addresses = cluster.LoadAssignment.Endpoints.Single().LbEndpoints.Select(e => $"{e.Endpoint.Address.SocketAddress.Address}:{e.Endpoint.Address.SocketAddress.PortValue}");
        Assert.Equal(expected, string.Join(",", addresses));
        Assert.False(snapshot.Get(TypeUrls.ClusterLoadAssignment)!.Resources.ContainsKey(name));
        var host = Assert.IsType<RouteConfiguration>(snapshot.Get(TypeUrls.RouteConfiguration)!.Resources[IstioNames.HttpProxyRoute].Message).VirtualHosts.Single(h => h.Name == "api.example.com:80");
        Assert.Contains("api.example.com", host.Domains);
    }
}
