using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Istio's pilot_push_triggers types, from what changed between two published generations.</summary>
public sealed class PushTriggerTests
{
    private const string Service = """
        apiVersion: v1
        kind: Service
        metadata: {name: reviews, namespace: default}
        spec: {selector: {app: reviews}, ports: [{name: http, port: 9080}]}
        """;

    private const string Entry = """
        apiVersion: networking.istio.io/v1
        kind: WorkloadEntry
        metadata: {name: reviews-v1, namespace: default}
        spec: {address: 127.0.0.1, labels: {app: reviews}}
        """;

    private const string Route = """
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: reviews, namespace: default}
        spec: {hosts: [reviews], http: [{route: [{destination: {host: reviews}}]}]}
        """;

    [Fact]
    public void Between_NamesWhatChanged_AndNothingForResourcesKeptAsTheyWere()
    {
        var service = TestFiles.ParseValid("s.yaml", Service);
        var entry = TestFiles.ParseValid("e.yaml", Entry);
        var route = TestFiles.ParseValid("r.yaml", Route);
        var before = new MeshConfig([.. service, .. entry], 1);

        Assert.Equal([PushTrigger.Config], PushTrigger.Between(before, new MeshConfig([.. service, .. entry, .. route], 2), keysChanged: false));
        Assert.Equal([PushTrigger.Endpoint], PushTrigger.Between(before, new MeshConfig([.. service], 2), keysChanged: false));
        // A re-read file is a new instance: counted as changed, as the file was.
        Assert.Equal([PushTrigger.Service], PushTrigger.Between(before, new MeshConfig([.. TestFiles.ParseValid("s.yaml", Service), .. entry], 2), keysChanged: false));
        Assert.Equal([PushTrigger.Secret], PushTrigger.Between(before, new MeshConfig([.. service, .. entry], 2), keysChanged: true));
        Assert.Equal([PushTrigger.Config, PushTrigger.Endpoint, PushTrigger.Service], PushTrigger.Between(null, new MeshConfig([.. service, .. entry, .. route], 1), keysChanged: false).Order(StringComparer.Ordinal));
    }
}
