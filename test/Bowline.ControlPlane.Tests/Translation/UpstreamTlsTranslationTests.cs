using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Snapshots;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Endpoint.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Envoy.Extensions.Upstreams.Http.V3;
using static Bowline.ControlPlane.Tests.Config.PeerAuthenticationPoliciesTests;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// Outbound clusters and their endpoints under DestinationRule <c>tls</c> and Istio's automatic mTLS: the Envoy fields
/// Istio writes (pilot/pkg/networking/core/cluster_tls.go, pilot/pkg/xds/endpoints/mtls_checker.go).
/// </summary>
public sealed class UpstreamTlsTranslationTests
{
    private const string Reviews = "outbound|9080||reviews.default.svc.cluster.local";
    private const string ReviewsV1 = "outbound|9080|v1|reviews.default.svc.cluster.local";
    private const string ReviewsV2 = "outbound|9080|v2|reviews.default.svc.cluster.local";

    private static readonly ProxyNode Sidecar = ProxyNode.From(TestNodes.ProductpageSidecar());

    /// <summary>The ISTIO_MUTUAL client context Istio writes for reviews, with <paramref name="sni"/>, exact URI SANs and the in-mesh ALPN.</summary>
    private static string IstioMutual(string sni, string[] sans, bool h2 = false) => $$$"""
        {
          "sni": "{{{sni}}}",
          "commonTlsContext": {
            "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"},
            "alpnProtocols": ["istio-peer-exchange", "istio"{{{(h2 ? ", \"h2\"" : "")}}}],
            "tlsCertificateSdsSecretConfigs": [{{{AgentSecret("default")}}}],
            "combinedValidationContext": {
              "defaultValidationContext": {"matchTypedSubjectAltNames": [{{{string.Join(", ", sans.Select(UriSan))}}}]},
              "validationContextSdsSecretConfig": {{{AgentSecret("ROOTCA")}}}
            }
          }
        }
        """;

    private static string UriSan(string san) => "{\"sanType\": \"URI\", \"matcher\": {\"exact\": \"" + san + "\"}}";

    private static readonly string[] ReviewsAccount = ["spiffe://cluster.local/ns/default/sa/bookinfo-reviews"];

    /// <summary>A DestinationRule for reviews that wins over the sample's (it sorts first), keeping its subsets.</summary>
    private static string ReviewsRule(string trafficPolicy, string subsetV1Policy = "{loadBalancer: {simple: ROUND_ROBIN}}") => $$$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: a-reviews}
        spec:
          host: reviews
          trafficPolicy: {{{trafficPolicy}}}
          subsets:
          - name: v1
            labels: {version: v1}
            trafficPolicy: {{{subsetV1Policy}}}
          - {name: v2, labels: {version: v2}}
          - {name: v3, labels: {version: v3}}
        """;

    private static Cluster ClusterOf(XdsSnapshot snapshot, string name) => Resource<Cluster>(snapshot, TypeUrls.Cluster, name);

    private static List<LbEndpoint> EndpointsOf(XdsSnapshot snapshot, string name) =>
        Resource<ClusterLoadAssignment>(snapshot, TypeUrls.ClusterLoadAssignment, name).Endpoints.SelectMany(l => l.LbEndpoints).ToList();

    private static string? TlsModeOf(LbEndpoint endpoint) =>
        endpoint.Metadata?.FilterMetadata.TryGetValue("envoy.transport_socket_match", out var match) == true ? match.Fields["tlsMode"].StringValue : null;

    private static UpstreamTlsContext Tls(Envoy.Config.Core.V3.TransportSocket socket)
    {
        Assert.Equal("envoy.transport_sockets.tls", socket.Name);
        return socket.TypedConfig.Unpack<UpstreamTlsContext>();
    }

    private static HttpProtocolOptions ProtocolOptions(Cluster cluster) =>
        cluster.TypedExtensionProtocolOptions["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"].Unpack<HttpProtocolOptions>();

    [Fact]
    public void Translate_AutoMtls_IstioAndPlaintextTransportSocketMatches()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries), Sidecar);

        var cluster = ClusterOf(snapshot, Reviews);
        Assert.Null(cluster.TransportSocket);
        Assert.Equal(["tlsMode-istio", "tlsMode-disabled"], cluster.TransportSocketMatches.Select(m => m.Name));
        Assert.Equal(Json<Google.Protobuf.WellKnownTypes.Struct>("""{"tlsMode": "istio"}"""), cluster.TransportSocketMatches[0].Match);
        Assert.Equal(Json<UpstreamTlsContext>(IstioMutual("outbound_.9080_._.reviews.default.svc.cluster.local", ReviewsAccount)), Tls(cluster.TransportSocketMatches[0].TransportSocket));
        Assert.Equal(new Google.Protobuf.WellKnownTypes.Struct(), cluster.TransportSocketMatches[1].Match);
        var plaintext = cluster.TransportSocketMatches[1].TransportSocket;
        Assert.Equal(("envoy.transport_sockets.raw_buffer", "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer", 0), (plaintext.Name, plaintext.TypedConfig.TypeUrl, plaintext.TypedConfig.Value.Length));
        // No auto SNI for mesh traffic: the SNI is Istio's, per cluster.
        Assert.Null(ProtocolOptions(cluster).UpstreamHttpProtocolOptions);
        Assert.All(EndpointsOf(snapshot, Reviews), e => Assert.Equal("istio", TlsModeOf(e)));
    }

    [Fact]
    public void Translate_AutoMtls_SubsetClusterHasItsOwnSni()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries), Sidecar);

        var tls = Tls(ClusterOf(snapshot, ReviewsV1).TransportSocketMatches[0].TransportSocket);
        Assert.Equal("outbound_.9080_.v1_.reviews.default.svc.cluster.local", tls.Sni);
        // The SANs are the service's, not the subset's: every account any reviews workload runs as.
        Assert.Equal(ReviewsAccount, tls.CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchTypedSubjectAltNames.Select(m => m.Matcher.Exact));
        Assert.Equal(["istio"], EndpointsOf(snapshot, ReviewsV1).Select(TlsModeOf));
    }

    [Fact]
    public void Translate_AutoMtls_EndpointsWithoutASidecar_HaveNoMetadataAndGetPlaintext()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries), Sidecar);

        var cluster = ClusterOf(snapshot, Reviews);
        // As in Istio, the matches are on every in-mesh cluster: an endpoint that gains a sidecar changes EDS only.
        Assert.Equal(["tlsMode-istio", "tlsMode-disabled"], cluster.TransportSocketMatches.Select(m => m.Name));
        Assert.Empty(Tls(cluster.TransportSocketMatches[0].TransportSocket).CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchTypedSubjectAltNames);
        Assert.All(EndpointsOf(snapshot, Reviews), e => Assert.Null(TlsModeOf(e)));
    }

    [Fact]
    public void Translate_AutoMtls_SidecarLabelDecides_AndAnAccountlessSidecarRunsAsDefault()
    {
        var entries = Bookinfo.Entries(w => (w.App, w.Version) switch
        {
            ("reviews", "v1") => "labels: {app: reviews, version: v1, security.istio.io/tlsMode: istio}",
            ("reviews", "v2") => "serviceAccount: reviews-v2\n  labels: {app: reviews, version: v2, security.istio.io/tlsMode: disabled}",
            ("reviews", "v3") => "serviceAccount: reviews-v3",
            _ => "",
        }).Replace("  labels: {app: reviews, version: v1}\n", "", StringComparison.Ordinal).Replace("  labels: {app: reviews, version: v2}\n", "", StringComparison.Ordinal);

        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(entries), Sidecar);

        Assert.Equal(["istio"], EndpointsOf(snapshot, ReviewsV1).Select(TlsModeOf));
        Assert.Equal([null], EndpointsOf(snapshot, ReviewsV2).Select(TlsModeOf));
        Assert.Equal(["istio"], EndpointsOf(snapshot, "outbound|9080|v3|reviews.default.svc.cluster.local").Select(TlsModeOf));
        var sans = Tls(ClusterOf(snapshot, Reviews).TransportSocketMatches[0].TransportSocket).CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchTypedSubjectAltNames;
        Assert.Equal(
            ["spiffe://cluster.local/ns/default/sa/default", "spiffe://cluster.local/ns/default/sa/reviews-v2", "spiffe://cluster.local/ns/default/sa/reviews-v3"],
            sans.Select(m => m.Matcher.Exact));
        Assert.All(sans, m => Assert.Equal(SubjectAltNameMatcher.Types.SanType.Uri, m.SanType));
    }

    [Fact]
    public void Translate_AutoMtls_Http2Cluster_AdvertisesH2TooAndKeepsTheSni()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, ReviewsRule("{connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}")), Sidecar);

        Assert.Equal(
            Json<UpstreamTlsContext>(IstioMutual("outbound_.9080_._.reviews.default.svc.cluster.local", ReviewsAccount, h2: true)),
            Tls(ClusterOf(snapshot, Reviews).TransportSocketMatches[0].TransportSocket));
    }

    [Fact]
    public void Translate_AutoMtls_EndpointWhosePolicyDisablesThePort_GetsPlaintext()
    {
        var snapshot = MeshTranslator.Translate(
            Bookinfo.MtlsIndex(
                Bookinfo.SidecarWorkloadEntries,
                Policy("default", "reviews-v2", "{selector: {matchLabels: {app: reviews, version: v2}}, mtls: {mode: STRICT}, portLevelMtls: {'9080': {mode: DISABLE}}}"),
                Policy("default", "reviews-v3", "{selector: {matchLabels: {version: v3}}, mtls: {mode: DISABLE}, portLevelMtls: {'9999': {mode: STRICT}}}")),
            Sidecar);

        var byPort = EndpointsOf(snapshot, Reviews).ToDictionary(e => e.Endpoint.Address.SocketAddress.PortValue, TlsModeOf);
        Assert.Equal(new Dictionary<uint, string?> { [15301] = "istio", [15302] = null, [15303] = null }, byPort);
        Assert.Equal(2, ClusterOf(snapshot, Reviews).TransportSocketMatches.Count);
    }

    [Theory]
    [InlineData("istio-system", "DISABLE")]
    [InlineData("default", "DISABLE")]
    public void Translate_AutoMtls_OffTowardANamespaceWhosePolicyIsDisable(string ns, string mode)
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, Policy(ns, "policy", $"{{mtls: {{mode: {mode}}}}}")), Sidecar);

        Assert.Empty(ClusterOf(snapshot, Reviews).TransportSocketMatches);
        Assert.Null(ClusterOf(snapshot, Reviews).TransportSocket);
        // The endpoints' own policy disables mTLS too, so none carries the metadata.
        Assert.All(EndpointsOf(snapshot, Reviews), e => Assert.Null(TlsModeOf(e)));
    }

    [Fact]
    public void Translate_AutoMtls_NotTowardAMeshExternalServiceEntry_ButTowardAMeshInternalOne()
    {
        const string Entries = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: external, namespace: default}
            spec:
              hosts: [api.example.com]
              ports: [{number: 443, name: http-api}]
              resolution: STATIC
              endpoints: [{address: 10.0.0.1, serviceAccount: api, labels: {app: api}}]
            ---
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: internal, namespace: default}
            spec:
              hosts: [vm.internal]
              location: MESH_INTERNAL
              ports: [{number: 8080, name: http}]
              resolution: STATIC
              subjectAltNames: ['spiffe://cluster.local/ns/vms/sa/legacy']
              endpoints: [{address: 10.0.0.2, serviceAccount: vm}]
            """;

        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, Entries), Sidecar);

        Assert.Empty(ClusterOf(snapshot, "outbound|443||api.example.com").TransportSocketMatches);
        var internalTls = Tls(ClusterOf(snapshot, "outbound|8080||vm.internal").TransportSocketMatches[0].TransportSocket);
        Assert.Equal(
            ["spiffe://cluster.local/ns/default/sa/vm", "spiffe://cluster.local/ns/vms/sa/legacy"],
            internalTls.CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchTypedSubjectAltNames.Select(m => m.Matcher.Exact));
        Assert.Equal(["istio"], EndpointsOf(snapshot, "outbound|8080||vm.internal").Select(TlsModeOf));
    }

    [Fact]
    public void Translate_MeshMtlsOff_ClustersAndEndpointsCarryNoTls()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Build(Bookinfo.SidecarWorkloadEntries, MeshSecurity.Off), Sidecar);

        foreach (var cluster in snapshot.Get(TypeUrls.Cluster)!.Resources.Values.Select(r => (Cluster)r.Message))
        {
            Assert.Null(cluster.TransportSocket);
            Assert.Empty(cluster.TransportSocketMatches);
        }
        Assert.All(snapshot.Get(TypeUrls.ClusterLoadAssignment)!.Resources.Values.SelectMany(r => ((ClusterLoadAssignment)r.Message).Endpoints.SelectMany(l => l.LbEndpoints)), e => Assert.Null(TlsModeOf(e)));
    }

    [Fact]
    public void Translate_IstioMutual_IsATransportSocketWithTheUsersSniAndNames()
    {
        var snapshot = MeshTranslator.Translate(
            Bookinfo.MtlsIndex(Bookinfo.WorkloadEntries, ReviewsRule("{tls: {mode: ISTIO_MUTUAL, sni: reviews.internal, subjectAltNames: ['spiffe://cluster.local/ns/default/sa/reviews']}}", "{tls: {mode: ISTIO_MUTUAL}}")),
            Sidecar);

        var cluster = ClusterOf(snapshot, Reviews);
        Assert.Empty(cluster.TransportSocketMatches);
        Assert.Equal(Json<UpstreamTlsContext>(IstioMutual("reviews.internal", ["spiffe://cluster.local/ns/default/sa/reviews"])), Tls(cluster.TransportSocket));
        // The subset's own tls replaces the rule's: Istio's SNI, the service's accounts (none here: no sidecars).
        Assert.Equal(Json<UpstreamTlsContext>(IstioMutual("outbound_.9080_.v1_.reviews.default.svc.cluster.local", [])), Tls(ClusterOf(snapshot, ReviewsV1).TransportSocket));
    }

    [Fact]
    public void Translate_IstioMutual_EndpointsWithASidecarCarryTheMetadata()
    {
        var snapshot = MeshTranslator.Translate(
            Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, ReviewsRule("{tls: {mode: ISTIO_MUTUAL}}"), Policy("default", "namespace", "{mtls: {mode: DISABLE}}")),
            Sidecar);

        // An explicit ISTIO_MUTUAL wins over what the destination's policy would make automatic mTLS do.
        Assert.NotNull(ClusterOf(snapshot, Reviews).TransportSocket);
        Assert.All(EndpointsOf(snapshot, Reviews), e => Assert.Equal("istio", TlsModeOf(e)));
    }

    [Fact]
    public void Translate_IstioMutualWithMeshMtlsOff_IsAWarningAndPlaintext()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Build(Bookinfo.SidecarWorkloadEntries, MeshSecurity.Off, ReviewsRule("{tls: {mode: ISTIO_MUTUAL}}")), Sidecar);

        Assert.Null(ClusterOf(snapshot, Reviews).TransportSocket);
        Assert.Contains(snapshot.Warnings, w => w.StartsWith("DestinationRule default/a-reviews (extra-0.yaml): tls mode ISTIO_MUTUAL is NOT applied: mesh mTLS is off", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_Disable_NoTlsAndNoMetadataEvenWithSidecars()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, ReviewsRule("{tls: {mode: DISABLE}}")), Sidecar);

        foreach (var name in new[] { Reviews, ReviewsV1, ReviewsV2 })
        {
            Assert.Null(ClusterOf(snapshot, name).TransportSocket);
            Assert.Empty(ClusterOf(snapshot, name).TransportSocketMatches);
            Assert.All(EndpointsOf(snapshot, name), e => Assert.Null(TlsModeOf(e)));
        }
    }

    [Fact]
    public void Translate_Simple_VerifiesWithThePlatformRootsAndTheRequestsHost()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{tls: {mode: SIMPLE}}")), Sidecar);

        var cluster = ClusterOf(snapshot, Reviews);
        Assert.Equal(Json<UpstreamTlsContext>($$$"""
            {
              "commonTlsContext": {
                "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"},
                "combinedValidationContext": {
                  "defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {{{AgentSecret("file-root:system")}}}
                }
              }
            }
            """), Tls(cluster.TransportSocket));
        Assert.Equal(Json<Envoy.Config.Core.V3.UpstreamHttpProtocolOptions>("""{"autoSni": true, "autoSanValidation": true}"""), ProtocolOptions(cluster).UpstreamHttpProtocolOptions);
        Assert.Empty(cluster.TransportSocketMatches);
    }

    [Fact]
    public void Translate_SimpleWithRootsSniAndNames_ReadsTheRootsFileAndChecksTheNames()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{tls: {mode: SIMPLE, caCertificates: /etc/certs/ca.pem, sni: reviews.example.com, subjectAltNames: [reviews.example.com, 'spiffe://example.com/reviews']}}")), Sidecar);

        var cluster = ClusterOf(snapshot, Reviews);
        Assert.Equal(Json<UpstreamTlsContext>("""
            {
              "sni": "reviews.example.com",
              "commonTlsContext": {
                "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"},
                "validationContext": {
                  "trustedCa": {"filename": "/etc/certs/ca.pem"},
                  "matchTypedSubjectAltNames": [{"sanType": "DNS", "matcher": {"exact": "reviews.example.com"}}, {"sanType": "URI", "matcher": {"exact": "spiffe://example.com/reviews"}}]
                }
              }
            }
            """), Tls(cluster.TransportSocket));
        Assert.Null(ProtocolOptions(cluster).UpstreamHttpProtocolOptions);
    }

    [Fact]
    public void Translate_SimpleInsecure_AnEmptyValidationContextAndAutoSniOnly()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{tls: {mode: SIMPLE, insecureSkipVerify: true}}")), Sidecar);

        var cluster = ClusterOf(snapshot, Reviews);
        Assert.Equal(
            Json<UpstreamTlsContext>("""{"commonTlsContext": {"tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"}, "validationContext": {}}}"""),
            Tls(cluster.TransportSocket));
        Assert.Equal(CommonTlsContext.ValidationContextTypeOneofCase.ValidationContext, Tls(cluster.TransportSocket).CommonTlsContext.ValidationContextTypeCase);
        Assert.Equal(Json<Envoy.Config.Core.V3.UpstreamHttpProtocolOptions>("""{"autoSni": true}"""), ProtocolOptions(cluster).UpstreamHttpProtocolOptions);
    }

    [Fact]
    public void Translate_MutualWithFiles_PresentsTheClientCertificateAsDataSourceFilenames()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{tls: {mode: MUTUAL, clientCertificate: /etc/certs/client.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, sni: reviews.example.com}}")), Sidecar);

        Assert.Equal(Json<UpstreamTlsContext>("""
            {
              "sni": "reviews.example.com",
              "commonTlsContext": {
                "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"},
                "tlsCertificates": [{"certificateChain": {"filename": "/etc/certs/client.pem"}, "privateKey": {"filename": "/etc/certs/key.pem"}}],
                "validationContext": {"trustedCa": {"filename": "/etc/certs/ca.pem"}}
              }
            }
            """), Tls(ClusterOf(snapshot, Reviews).TransportSocket));
    }

    [Fact]
    public void Translate_MutualWithCredentialName_IsIstiosSdsSecretsOverAdsAndAWarning()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{tls: {mode: MUTUAL, credentialName: reviews-client, sni: reviews.example.com}}")), Sidecar);

        Assert.Equal(Json<UpstreamTlsContext>($$$"""
            {
              "sni": "reviews.example.com",
              "commonTlsContext": {
                "tlsParams": {"tlsMinimumProtocolVersion": "TLSv1_2", "tlsMaximumProtocolVersion": "TLSv1_3"},
                "tlsCertificateSdsSecretConfigs": [{{{ControlPlaneSecret("kubernetes://reviews-client")}}}],
                "combinedValidationContext": {
                  "defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {{{ControlPlaneSecret("kubernetes://reviews-client-cacert")}}}
                }
              }
            }
            """), Tls(ClusterOf(snapshot, Reviews).TransportSocket));
        // Served over SDS from the proxy's namespace once the Secret exists; until then a warning names what is missing.
        Assert.Contains(snapshot.Warnings, w => w.Contains("no Secret default/reviews-client with tls.crt and tls.key for credentialName reviews-client", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_SimpleToAnHttp2Cluster_AdvertisesH2()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.Index(ReviewsRule("{tls: {mode: SIMPLE, sni: reviews.example.com}, connectionPool: {http: {h2UpgradePolicy: UPGRADE}}}")), Sidecar);

        Assert.Equal(["h2"], Tls(ClusterOf(snapshot, Reviews).TransportSocket).CommonTlsContext.AlpnProtocols);
    }

    [Fact]
    public void Translate_SimpleToAServiceEntry_ChecksTheEntrysNamesWhenTheRuleGivesNone()
    {
        const string Entry = """
            apiVersion: networking.istio.io/v1
            kind: ServiceEntry
            metadata: {name: api, namespace: default}
            spec:
              hosts: [api.example.com]
              ports: [{number: 443, name: http-api}]
              resolution: DNS
              subjectAltNames: [api.example.com]
            ---
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: api, namespace: default}
            spec:
              host: api.example.com
              trafficPolicy: {tls: {mode: SIMPLE}}
            """;

        var snapshot = MeshTranslator.Translate(Bookinfo.Index(Entry), Sidecar);

        var tls = Tls(ClusterOf(snapshot, "outbound|443||api.example.com").TransportSocket);
        Assert.Equal(
            [(SubjectAltNameMatcher.Types.SanType.Dns, "api.example.com")],
            tls.CommonTlsContext.CombinedValidationContext.DefaultValidationContext.MatchTypedSubjectAltNames.Select(m => (m.SanType, m.Matcher.Exact)));
    }

    [Fact]
    public void Translate_TlsPrecedence_PortLevelReplacesTheRulesAndASubsetOverrides()
    {
        var snapshot = MeshTranslator.Translate(
            Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, ReviewsRule("{tls: {mode: SIMPLE}, portLevelSettings: [{port: {number: 9080}, loadBalancer: {simple: RANDOM}}]}", "{tls: {mode: ISTIO_MUTUAL}}")),
            Sidecar);

        // Port 9080's policy replaces the rule's wholesale: no tls there, so automatic mTLS.
        Assert.Null(ClusterOf(snapshot, Reviews).TransportSocket);
        Assert.Equal(2, ClusterOf(snapshot, Reviews).TransportSocketMatches.Count);
        Assert.Equal("outbound_.9080_.v1_.reviews.default.svc.cluster.local", Tls(ClusterOf(snapshot, ReviewsV1).TransportSocket).Sni);
        Assert.Equal(2, ClusterOf(snapshot, ReviewsV2).TransportSocketMatches.Count);
    }

    [Fact]
    public void Translate_Proxyless_NoAutomaticMtlsAndExplicitTlsIsAWarning()
    {
        var proxyless = ProxyNode.From(TestNodes.ProxylessGrpc());

        var auto = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries), proxyless);
        var istioMutual = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, ReviewsRule("{tls: {mode: ISTIO_MUTUAL}}")), proxyless);

        foreach (var snapshot in new[] { auto, istioMutual })
        {
            Assert.Null(ClusterOf(snapshot, Reviews).TransportSocket);
            Assert.Empty(ClusterOf(snapshot, Reviews).TransportSocketMatches);
            Assert.All(EndpointsOf(snapshot, Reviews), e => Assert.Null(TlsModeOf(e)));
        }
        Assert.Contains(istioMutual.Warnings, w => w.StartsWith("DestinationRule default/a-reviews (extra-0.yaml): tls mode ISTIO_MUTUAL is not sent to proxyless gRPC clients", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_Gateway_GetsAutomaticMtlsToTheMesh()
    {
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries), ProxyNode.From(TestNodes.IngressGateway()));

        Assert.Equal(["tlsMode-istio", "tlsMode-disabled"], ClusterOf(snapshot, "outbound|9080||productpage.default.svc.cluster.local").TransportSocketMatches.Select(m => m.Name));
        Assert.All(EndpointsOf(snapshot, "outbound|9080||productpage.default.svc.cluster.local"), e => Assert.Equal("istio", TlsModeOf(e)));
    }
}
