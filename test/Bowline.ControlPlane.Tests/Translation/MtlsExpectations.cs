using Bowline.ControlPlane.Snapshots;
using Bowline.Xds;
using Google.Protobuf;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>What the mTLS translation tests share: the exact Envoy JSON Istio writes for its SDS secrets, and resource lookups.</summary>
internal static class MtlsExpectations
{
    /// <summary>An SDS secret from the proxy's agent, exactly as Istio writes <c>default</c> and <c>ROOTCA</c>.</summary>
    public static string AgentSecret(string name) => $$$"""
        {
          "name": "{{{name}}}",
          "sdsConfig": {
            "apiConfigSource": {"apiType": "GRPC", "transportApiVersion": "V3", "setNodeOnFirstMessageOnly": true, "grpcServices": [{"envoyGrpc": {"clusterName": "sds-grpc"}}]},
            "initialFetchTimeout": "0s",
            "resourceApiVersion": "V3"
          }
        }
        """;

    /// <summary>A credentialName secret, fetched from the control plane over ADS.</summary>
    public static string ControlPlaneSecret(string name) => $$$"""{"name": "{{{name}}}", "sdsConfig": {"ads": {}, "resourceApiVersion": "V3"}}""";

    /// <summary>A message from its Envoy JSON, so a test states the exact fields and compares by value.</summary>
    public static T Json<T>(string json)
        where T : IMessage<T>, new() => JsonParser.Default.Parse<T>(json);

    public static T Resource<T>(XdsSnapshot snapshot, string typeUrl, string name)
    {
        var resources = snapshot.Get(typeUrl)!.Resources;
        Assert.True(resources.TryGetValue(name, out var resource), $"no {TypeUrls.ShortName(typeUrl)} resource {name}; have {string.Join(", ", resources.Keys)}");
        return Assert.IsType<T>(resource.Message);
    }
}
