using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using static Bowline.ControlPlane.Tests.Config.PeerAuthenticationPoliciesTests;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// A sidecar's <c>virtualInbound</c> under PeerAuthentication with mesh mTLS on: the Envoy fields Istio writes for
/// an HTTP inbound port in STRICT, PERMISSIVE and DISABLE mode (pilot/pkg/networking/core/filterchain_options.go).
/// </summary>
public sealed class InboundMtlsTranslationTests
{
    private static readonly ProxyNode Productpage = ProxyNode.From(TestNodes.ProductpageSidecar());

    /// <summary>reviews-v1 with two inbound ports, 9080 (accepted on 15380) and 9090 (on 15390).</summary>
    private static readonly ProxyNode Reviews = ProxyNode.From(TestNodes.Sidecar("reviews", "v1", 9080, 9090));

    /// <summary>The server side of mesh mTLS, field for field: Istio's BuildInboundTLS with the trust domain cluster.local.</summary>
    private static readonly string InboundTls = $$$"""
        {
          "requireClientCertificate": true,
          "commonTlsContext": {
            "tlsParams": {
              "tlsMinimumProtocolVersion": "TLSv1_2",
              "tlsMaximumProtocolVersion": "TLSv1_3",
              "cipherSuites": ["ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384", "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256", "AES256-GCM-SHA384", "AES128-GCM-SHA256"]
            },
            "alpnProtocols": ["h2", "http/1.1"],
            "tlsCertificateSdsSecretConfigs": [{{{AgentSecret("default")}}}],
            "combinedValidationContext": {
              "defaultValidationContext": {"matchTypedSubjectAltNames": [{"sanType": "URI", "matcher": {"prefix": "spiffe://cluster.local/"}}]},
              "validationContextSdsSecretConfig": {{{AgentSecret("ROOTCA")}}}
            }
          }
        }
        """;

    private static Listener Inbound(Bowline.ControlPlane.Snapshots.XdsSnapshot snapshot) => Resource<Listener>(snapshot, TypeUrls.Listener, IstioNames.VirtualInbound);

    private static string StrictNamespace(string mode = "STRICT") => Policy("default", "default", $"{{mtls: {{mode: {mode}}}}}");

    [Fact]
    public void Translate_MeshMtlsOff_InboundIsWhatItWasAndStrictIsAWarning()
    {
        var before = MeshTranslator.Translate(Bookinfo.Index(), Productpage);
        var after = MeshTranslator.Translate(Bookinfo.Index(StrictNamespace()), Productpage);

        Assert.Equal(Inbound(before), Inbound(after));
        var chain = Assert.Single(Inbound(after).FilterChains);
        Assert.Empty(Inbound(after).ListenerFilters);
        Assert.Null(chain.TransportSocket);
        Assert.Equal(Json<FilterChainMatch>("""{"destinationPort": 15006}"""), chain.FilterChainMatch);
        var warning = Assert.Single(after.Warnings, w => w.Contains("PeerAuthentication default/default", StringComparison.Ordinal));
        Assert.Contains("STRICT is NOT enforced: mesh mTLS is off", warning, StringComparison.Ordinal);
        Assert.DoesNotContain(before.Warnings, w => w.Contains("PeerAuthentication", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_MeshMtlsOn_RunsTheTlsInspectorThenTheHttpInspector()
    {
        var listener = Inbound(MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries), Productpage));

        Assert.Equal(["envoy.filters.listener.tls_inspector", "envoy.filters.listener.http_inspector"], listener.ListenerFilters.Select(f => f.Name));
        Assert.Equal(512u, listener.ListenerFilters[0].TypedConfig.Unpack<Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector>().InitialReadBufferSize);
        Assert.Equal(new Envoy.Extensions.Filters.Listener.HttpInspector.V3.HttpInspector(), listener.ListenerFilters[1].TypedConfig.Unpack<Envoy.Extensions.Filters.Listener.HttpInspector.V3.HttpInspector>());
    }

    [Fact]
    public void Translate_Strict_OneTlsChainWithTheWorkloadCertificateAndRequiredClientCertificates()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries, StrictNamespace()), Productpage);

        var chain = Assert.Single(Inbound(snapshot).FilterChains);
        Assert.Equal("inbound|9080||", chain.Name);
        Assert.Equal(Json<FilterChainMatch>("""{"destinationPort": 15006, "transportProtocol": "tls"}"""), chain.FilterChainMatch);
        Assert.Equal("envoy.transport_sockets.tls", chain.TransportSocket.Name);
        Assert.Equal(Json<DownstreamTlsContext>(InboundTls), chain.TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>());
        // The deprecated untyped SAN matcher (field 9) is never sent: Bowline's proxy refuses it.
#pragma warning disable CS0612
        Assert.Empty(chain.TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>().CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchSubjectAltNames);
#pragma warning restore CS0612
        Assert.Equal("inbound|9080||", chain.Filters.Single().TypedConfig.Unpack<Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManager>().RouteConfig.Name);
        Assert.DoesNotContain(snapshot.Warnings, w => w.Contains("PeerAuthentication", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_PermissiveByDefault_TlsChainForIstiosAlpnsThenAPlaintextChain()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries), Productpage);

        var chains = Inbound(snapshot).FilterChains;
        Assert.Equal(2, chains.Count);
        Assert.Equal(
            Json<FilterChainMatch>("""{"destinationPort": 15006, "transportProtocol": "tls", "applicationProtocols": ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"]}"""),
            chains[0].FilterChainMatch);
        Assert.Equal(Json<DownstreamTlsContext>(InboundTls), chains[0].TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>());
        Assert.Equal(Json<FilterChainMatch>("""{"destinationPort": 15006, "transportProtocol": "raw_buffer"}"""), chains[1].FilterChainMatch);
        Assert.Null(chains[1].TransportSocket);
        Assert.Equal(chains[0].Filters, chains[1].Filters);
        Assert.Equal(["inbound|9080||", "inbound|9080||"], chains.Select(c => c.Name));
    }

    [Fact]
    public void Translate_Disable_OnlyThePlaintextChain()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries, StrictNamespace("DISABLE")), Productpage);

        var chain = Assert.Single(Inbound(snapshot).FilterChains);
        Assert.Equal(Json<FilterChainMatch>("""{"destinationPort": 15006, "transportProtocol": "raw_buffer"}"""), chain.FilterChainMatch);
        Assert.Null(chain.TransportSocket);
    }

    [Fact]
    public void Translate_PortLevelMtls_OverridesTheWorkloadModePerPort()
    {
        var snapshot = MeshTranslator.Translate(
            Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries, Policy("default", "reviews", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}, portLevelMtls: {'9090': {mode: DISABLE}}}")),
            Reviews);

        var chains = Inbound(snapshot).FilterChains;
        Assert.Equal(
            [("inbound|9080||", 15380u, "tls"), ("inbound|9090||", 15390u, "raw_buffer")],
            chains.Select(c => (c.Name, c.FilterChainMatch.DestinationPort!.Value, c.FilterChainMatch.TransportProtocol)));
        Assert.NotNull(chains[0].TransportSocket);
    }

    [Theory]
    [InlineData("STRICT", "DISABLE", "PERMISSIVE", "tls+istio,raw_buffer")]
    [InlineData("DISABLE", "STRICT", null, "tls")]
    [InlineData("STRICT", null, null, "tls")]
    [InlineData("STRICT", "UNSET", "UNSET", "tls")]
    [InlineData("PERMISSIVE", "STRICT", "DISABLE", "raw_buffer")]
    public void Translate_Precedence_WorkloadOverNamespaceOverMesh(string mesh, string? ns, string? workload, string chains)
    {
        var documents = new List<string> { Policy("istio-system", "mesh", $"{{mtls: {{mode: {mesh}}}}}") };
        if (ns is not null)
        {
            documents.Add(Policy("default", "namespace", $"{{mtls: {{mode: {ns}}}}}"));
        }
        if (workload is not null)
        {
            documents.Add(Policy("default", "productpage", $"{{selector: {{matchLabels: {{app: productpage}}}}, mtls: {{mode: {workload}}}}}"));
        }

        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries, [.. documents]), Productpage);

        Assert.Equal(chains, string.Join(",", Inbound(snapshot).FilterChains.Select(c => c.FilterChainMatch.TransportProtocol + (c.FilterChainMatch.ApplicationProtocols.Count > 0 ? "+istio" : ""))));
    }

    [Fact]
    public void Translate_ShadowedPolicyAndUnknownPort_AreWarningsNamingThePolicies()
    {
        var snapshot = MeshTranslator.Translate(
            Bookinfo.MtlsIndex(
                Bookinfo.WorkloadEntries,
                Policy("default", "a-reviews", "{selector: {matchLabels: {app: reviews}}, mtls: {mode: STRICT}, portLevelMtls: {'8080': {mode: DISABLE}}}"),
                Policy("default", "b-reviews-v1", "{selector: {matchLabels: {version: v1}}, mtls: {mode: DISABLE}}")),
            Reviews);

        Assert.All(Inbound(snapshot).FilterChains, c => Assert.Equal("tls", c.FilterChainMatch.TransportProtocol));
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("PeerAuthentication default/b-reviews-v1 (extra-1.yaml) has no effect on workload reviews-v1.default: PeerAuthentication default/a-reviews also selects it", StringComparison.Ordinal));
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("PeerAuthentication default/a-reviews (extra-0.yaml): portLevelMtls port 8080 is not an inbound port of workload reviews-v1.default (9080, 9090)", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_TrustDomain_IsThePrefixClientCertificatesMustCarry()
    {
        var index = Bookinfo.Build(Bookinfo.WorkloadEntries, new MeshSecurity(true, "example.org"), StrictNamespace());

        var chain = Assert.Single(Inbound(MeshTranslator.Translate(index, Productpage)).FilterChains);

        var matcher = chain.TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>().CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchTypedSubjectAltNames.Single();
        Assert.Equal("spiffe://example.org/", matcher.Matcher.Prefix);
    }

    [Fact]
    public void Translate_GatewayAndProxyless_HaveNoInboundListener()
    {
        var index = Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries, StrictNamespace());

        foreach (var node in new[] { TestNodes.IngressGateway(), TestNodes.ProxylessGrpc() })
        {
            Assert.False(MeshTranslator.Translate(index, ProxyNode.From(node)).Get(TypeUrls.Listener)!.Resources.ContainsKey(IstioNames.VirtualInbound));
        }
    }
}
