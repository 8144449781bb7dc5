using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Service.Discovery.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Tests.Translation;

public sealed class ProxylessDetectionTests
{
    [Theory]
    [InlineData("gRPC Node Pure JS", true)]
    [InlineData("grpc-node-js", true)]
    [InlineData("gRPC Java", true)]
    [InlineData("grpc-java-netty/1.62.2", true)]
    [InlineData("gRPC Go", true)]
    [InlineData("grpc-go/1.64.0", true)]
    [InlineData("gRPC C-core", true)]
    [InlineData("grpc-c/39.0.0 (linux; chttp2)", true)]
    [InlineData("envoy", false)]
    [InlineData("bowline", false)]
    [InlineData("grpcurl", false)]
    [InlineData("", false)]
    public void IsGrpcUserAgent_LibraryNames_AreRecognised(string agent, bool expected) =>
        Assert.Equal(expected, ProxylessDetection.IsGrpcUserAgent(agent));

    [Theory]
    [InlineData(TypeUrls.Listener, new[] { "reviews:9080" }, true)]
    [InlineData(TypeUrls.Listener, new[] { "reviews.default.svc.cluster.local:9080", "ratings:9080" }, true)]
    [InlineData(TypeUrls.Listener, new string[0], false)]
    [InlineData(TypeUrls.Listener, new[] { "*" }, false)]
    [InlineData(TypeUrls.Listener, new[] { "virtualInbound" }, false)]
    [InlineData(TypeUrls.Listener, new[] { "reviews:http" }, false)]
    [InlineData(TypeUrls.Listener, new[] { "reviews:70000" }, false)]
    [InlineData(TypeUrls.RouteConfiguration, new[] { "reviews:9080" }, false)]
    public void AsksForApiListeners_ByRequestShape(string typeUrl, string[] names, bool expected) =>
        Assert.Equal(expected, ProxylessDetection.AsksForApiListeners(new DiscoveryRequest { TypeUrl = typeUrl, ResourceNames = { names } }));

    [Fact]
    public void From_GrpcUserAgentButSidecarMetadata_StaysASidecar()
    {
        var node = TestNodes.ProductpageSidecar();
        node.UserAgentName = "gRPC Go";

        var parsed = ProxyNode.From(node);

        Assert.Equal(ProxyKind.Sidecar, parsed.Kind);
        Assert.False(parsed.KindDefaulted);
    }

    [Fact]
    public void From_GeneratorOtherThanGrpc_IsDeclaredNotDefaulted()
    {
        var node = TestNodes.BareGrpcClient("acme");
        node.Metadata = new Struct { Fields = { ["GENERATOR"] = Value.ForString("api") } };

        Assert.False(ProxyNode.From(node).KindDefaulted);
        Assert.True(ProxyNode.From(TestNodes.BareGrpcClient("acme")).KindDefaulted);
        Assert.Equal(ProxyKind.ProxylessGrpc, ProxyNode.From(TestNodes.BareGrpcClient("gRPC Node Pure JS")).Kind);
    }
}
