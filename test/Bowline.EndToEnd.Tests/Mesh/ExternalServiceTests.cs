using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>External services declared with a DNS ServiceEntry, reached by name through the sidecar.</summary>
public sealed class ExternalServiceTests
{
    [Fact]
    public async Task DnsServiceEntry_NameResolvingToALocalBackend_IsReachedThroughTheSidecar()
    {
        await using var backend = await TestBackend.StartAsync("external");
        await using var mesh = await MeshHarness.StartAsync(("external.yaml", $$"""
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: external-api, namespace: default}
            spec:
              hosts: [api.external.test]
              location: MESH_EXTERNAL
              resolution: DNS
              ports:
              - {number: 80, name: http, protocol: HTTP}
              endpoints:
              - address: localhost
                ports: {http: {{backend.Port}}}
            """));
        var client = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage" }, [], "outbound|80||api.external.test");
        using var http = client.Client();

        using var response = await http.GetAsync("http://api.external.test/v1/things").Within(Timeouts.Short);

        Assert.True(response.IsSuccessStatusCode, await response.Content.ReadAsStringAsync());
        Assert.Equal("external", response.Headers.GetValues("x-backend").Single());
        Assert.True(client.Host.Stats.ValueOf("cluster.outbound|80||api.external.test.update_success") >= 1);
    }
}
