using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Envoy.Config.Core.V3;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// The whole snapshot of each kind of proxy for bookinfo, compared with a reviewed golden file. A failure shows the first
/// difference; <c>Translation/Golden/*.actual.json</c> in the output directory holds the full new output. To accept a
/// deliberate change, run with <c>BOWLINE_UPDATE_GOLDEN=1</c> (see <see cref="GoldenFile"/>).
/// </summary>
public sealed class MeshTranslatorGoldenTests
{
    public static TheoryData<string> Nodes => new() { "bookinfo-productpage-sidecar", "bookinfo-ingress-gateway", "bookinfo-proxyless-grpc" };

    [Theory]
    [MemberData(nameof(Nodes))]
    public void Translate_Bookinfo_MatchesGoldenFile(string golden)
    {
        Node node = golden switch
        {
            "bookinfo-productpage-sidecar" => TestNodes.ProductpageSidecar(),
            "bookinfo-ingress-gateway" => TestNodes.IngressGateway(),
            _ => TestNodes.ProxylessGrpc(),
        };

        var snapshot = MeshTranslator.Translate(Bookinfo.Index(), ProxyNode.From(node));

        GoldenFile.Verify($"{golden}.json", SnapshotJson.Serialize(snapshot));
    }

    [Fact]
    public void Translate_SameInputTwice_SerializesIdentically()
    {
        var node = ProxyNode.From(TestNodes.ProductpageSidecar());

        var first = SnapshotJson.Serialize(MeshTranslator.Translate(Bookinfo.Index(), node));
        var second = SnapshotJson.Serialize(MeshTranslator.Translate(Bookinfo.Index(), node));

        Assert.Equal(first, second);
    }
}
