using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Tests.Infrastructure;
using Bowline.ControlPlane.Translation;
using Bowline.Xds;
using Envoy.Config.Listener.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using static Bowline.ControlPlane.Tests.Infrastructure.TestCredentials;
using static Bowline.ControlPlane.Tests.Translation.MtlsExpectations;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// Gateway servers with <c>tls</c>, translated as Istio's pilot writes them (pilot/pkg/networking/core/gateway.go,
/// BuildListenerTLSContext, pilot/pkg/xds/sds.go): one chain per HTTPS server by SNI, the credential over SDS from the
/// gateway's own namespace, httpsRedirect on the plain server.
/// </summary>
public sealed class GatewayTlsTranslationTests
{
    // The test gateway runs in istio-system (its node id); Secrets must be there to be served to it.
    private static readonly ProxyNode Gateway = ProxyNode.From(TestNodes.IngressGateway());

    private static string HttpbinGateway(string servers) => $"""
        apiVersion: networking.istio.io/v1
        kind: Gateway
        metadata: {"{"}name: mygateway, namespace: istio-system{"}"}
        spec:
          selector: {"{"}istio: ingressgateway{"}"}
          servers:
        {servers}
        """;

    private const string SimpleServer = "  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: SIMPLE, credentialName: httpbin-credential}}";

    private const string HttpbinService = """
        apiVersion: v1
        kind: Service
        metadata: {name: httpbin, namespace: default}
        spec:
          selector: {app: httpbin}
          ports: [{name: http, port: 8000}]
        ---
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: httpbin, namespace: default}
        spec:
          hosts: [httpbin.example.com, helloworld.example.com]
          gateways: [istio-system/mygateway]
          http:
          - route: [{destination: {host: httpbin, port: {number: 8000}}}]
        """;

    private static ServiceIndex Index(params string[] yaml) => Bookinfo.Index([HttpbinService, .. yaml]);

    private static Listener Https(Bowline.ControlPlane.Snapshots.XdsSnapshot snapshot) => Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_443");

    private static DownstreamTlsContext TlsOf(FilterChain chain) => chain.TransportSocket.TypedConfig.Unpack<DownstreamTlsContext>();

    private static HttpConnectionManager HcmOf(FilterChain chain) => chain.Filters[0].TypedConfig.Unpack<HttpConnectionManager>();

    [Fact]
    public void Translate_SimpleWithCredential_IsAChainBySniWithTheCredentialOverAds()
    {
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(SimpleServer), TlsSecret("httpbin-credential", "istio-system", Leaf("httpbin.example.com"))), Gateway);

        var listener = Https(snapshot);
        Assert.Equal([TlsContexts.TlsInspectorFilter], listener.ListenerFilters.Select(f => f.Name));
        var chain = Assert.Single(listener.FilterChains);
        Assert.Equal(["httpbin.example.com"], chain.FilterChainMatch.ServerNames);
        Assert.Equal("envoy.transport_sockets.tls", chain.TransportSocket.Name);
        Assert.Equal(Json<DownstreamTlsContext>($$$"""
            {
              "commonTlsContext": {
                "alpnProtocols": ["h2", "http/1.1"],
                "tlsCertificateSdsSecretConfigs": [{{{ControlPlaneSecret("kubernetes://httpbin-credential")}}}]
              },
              "requireClientCertificate": false
            }
            """), TlsOf(chain));
        var hcm = HcmOf(chain);
        Assert.Equal("https.443.https.mygateway.istio-system", hcm.Rds.RouteConfigName);
        Assert.True(hcm.UseRemoteAddress);
        var route = Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, "https.443.https.mygateway.istio-system");
        var host = Assert.Single(route.VirtualHosts);
        Assert.Equal(["httpbin.example.com", "httpbin.example.com:443"], host.Domains);
        Assert.Equal("outbound|8000||httpbin.default.svc.cluster.local", host.Routes[0].Route_.Cluster);
    }

    [Fact]
    public void Translate_CredentialSecret_IsServedAsAnSdsTlsCertificate()
    {
        var leaf = Leaf("httpbin.example.com");
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(SimpleServer), TlsSecret("httpbin-credential", "istio-system", leaf)), Gateway);

        var secret = Resource<Secret>(snapshot, TypeUrls.Secret, "kubernetes://httpbin-credential");
        Assert.Equal(leaf.Certificate, secret.TlsCertificate.CertificateChain.InlineBytes.ToStringUtf8());
        Assert.Equal(leaf.Key, secret.TlsCertificate.PrivateKey.InlineBytes.ToStringUtf8());
        Assert.DoesNotContain(snapshot.Warnings, w => w.Contains("httpbin-credential", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_SecretInAnotherNamespace_IsNeverServed()
    {
        // The Gateway resource and the Secret are in default; the gateway proxy runs in istio-system.
        var gateway = HttpbinGateway(SimpleServer).Replace("namespace: istio-system", "namespace: default", StringComparison.Ordinal);
        var snapshot = MeshTranslator.Translate(Index(gateway, TlsSecret("httpbin-credential", "default", Leaf("httpbin.example.com"))), Gateway);

        Assert.Empty(snapshot.Get(TypeUrls.Secret)!.Resources);
        Assert.Contains(snapshot.Warnings, w => w.Contains("no Secret istio-system/httpbin-credential with tls.crt and tls.key", StringComparison.Ordinal) && w.Contains("Secrets of other namespaces are never served", StringComparison.Ordinal));
        // The chain is still there: it refuses handshakes (secret not ready) until the Secret exists.
        Assert.Single(Https(snapshot).FilterChains);
    }

    [Fact]
    public void Translate_Mutual_RequiresAClientCertificateVerifiedAgainstTheCacertSecret()
    {
        var server = "  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: MUTUAL, credentialName: httpbin-credential, subjectAltNames: [client.example.com]}}";
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(server), TlsSecret("httpbin-credential", "istio-system", Leaf("httpbin.example.com"), RootPem)), Gateway);

        Assert.Equal(Json<DownstreamTlsContext>($$$"""
            {
              "commonTlsContext": {
                "alpnProtocols": ["h2", "http/1.1"],
                "tlsCertificateSdsSecretConfigs": [{{{ControlPlaneSecret("kubernetes://httpbin-credential")}}}],
                "combinedValidationContext": {
                  "defaultValidationContext": {"matchTypedSubjectAltNames": [{"sanType": "DNS", "matcher": {"exact": "client.example.com"}}]},
                  "validationContextSdsSecretConfig": {{{ControlPlaneSecret("kubernetes://httpbin-credential-cacert")}}}
                }
              },
              "requireClientCertificate": true
            }
            """), TlsOf(Assert.Single(Https(snapshot).FilterChains)));
        // Istio's GetCaCert: no Secret httpbin-credential-cacert, so the ca.crt of httpbin-credential.
        var ca = Resource<Secret>(snapshot, TypeUrls.Secret, "kubernetes://httpbin-credential-cacert");
        Assert.Equal(RootPem, ca.ValidationContext.TrustedCa.InlineBytes.ToStringUtf8());
    }

    [Fact]
    public void Translate_MutualWithoutACaBundle_WarnsThatHandshakesAreRefused()
    {
        var server = "  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: MUTUAL, credentialName: httpbin-credential}}";
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(server), TlsSecret("httpbin-credential", "istio-system", Leaf("httpbin.example.com"))), Gateway);

        Assert.Single(snapshot.Get(TypeUrls.Secret)!.Resources);
        Assert.Contains(snapshot.Warnings, w => w.Contains("no CA bundle for kubernetes://httpbin-credential-cacert", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_IstioMutual_UsesTheGatewaysOwnCertificateAndTheMeshRoots()
    {
        var server = "  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: ['*'], tls: {mode: ISTIO_MUTUAL}}";
        var snapshot = MeshTranslator.Translate(Bookinfo.MtlsIndex(Bookinfo.SidecarWorkloadEntries, HttpbinService, HttpbinGateway(server)), Gateway);

        var chain = Assert.Single(Https(snapshot).FilterChains);
        Assert.Empty(chain.FilterChainMatch.ServerNames);
        Assert.Equal(Json<DownstreamTlsContext>($$$"""
            {
              "commonTlsContext": {
                "alpnProtocols": ["h2", "http/1.1"],
                "tlsCertificateSdsSecretConfigs": [{{{AgentSecret("default")}}}],
                "combinedValidationContext": {
                  "defaultValidationContext": {},
                  "validationContextSdsSecretConfig": {{{AgentSecret("ROOTCA")}}}
                }
              },
              "requireClientCertificate": true
            }
            """), TlsOf(chain));
        Assert.Empty(snapshot.Get(TypeUrls.Secret)!.Resources);
    }

    [Fact]
    public void Translate_VersionsAndCiphers_AreTheTlsParams()
    {
        var server = "  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: SIMPLE, credentialName: httpbin-credential, minProtocolVersion: TLSV1_3, cipherSuites: [ECDHE-RSA-AES128-GCM-SHA256]}}";
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(server)), Gateway);

        Assert.Equal(Json<Envoy.Extensions.TransportSockets.Tls.V3.TlsParameters>("""{"tlsMinimumProtocolVersion": "TLSv1_3", "cipherSuites": ["ECDHE-RSA-AES128-GCM-SHA256"]}"""),
            TlsOf(Assert.Single(Https(snapshot).FilterChains)).CommonTlsContext.TlsParams);
    }

    [Fact]
    public void Translate_FileCertificates_AreFilenamesAndTheCaIsTheAgentsFileRoot()
    {
        var server = "  - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: MUTUAL, serverCertificate: /etc/certs/tls.crt, privateKey: /etc/certs/tls.key, caCertificates: /etc/certs/ca.crt}}";
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(server)), Gateway);

        var common = TlsOf(Assert.Single(Https(snapshot).FilterChains)).CommonTlsContext;
        Assert.Equal(Json<TlsCertificate>("""{"certificateChain": {"filename": "/etc/certs/tls.crt"}, "privateKey": {"filename": "/etc/certs/tls.key"}}"""), Assert.Single(common.TlsCertificates));
        Assert.Equal("file-root:/etc/certs/ca.crt", common.CombinedValidationContext.ValidationContextSdsSecretConfig.Name);
        Assert.Empty(snapshot.Get(TypeUrls.Secret)!.Resources);
    }

    [Fact]
    public void Translate_TwoHttpsServersOnOnePort_AreTwoChainsBySniWithTheirOwnRoutes()
    {
        var servers = """
              - {port: {number: 443, name: https-httpbin, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: SIMPLE, credentialName: httpbin-credential}}
              - {port: {number: 443, name: https-helloworld, protocol: HTTPS}, hosts: [helloworld.example.com], tls: {mode: SIMPLE, credentialName: helloworld-credential}}
            """;
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(servers),
            TlsSecret("httpbin-credential", "istio-system", Leaf("httpbin.example.com")), TlsSecret("helloworld-credential", "istio-system", Leaf("helloworld.example.com"))), Gateway);

        var chains = Https(snapshot).FilterChains;
        Assert.Equal([["httpbin.example.com"], ["helloworld.example.com"]], chains.Select(c => c.FilterChainMatch.ServerNames.ToArray()));
        Assert.Equal(["https.443.https-httpbin.mygateway.istio-system", "https.443.https-helloworld.mygateway.istio-system"], chains.Select(c => HcmOf(c).Rds.RouteConfigName));
        Assert.Equal(["helloworld.example.com"], Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, "https.443.https-helloworld.mygateway.istio-system").VirtualHosts.Select(v => v.Domains[0]));
        Assert.Equal(["kubernetes://helloworld-credential", "kubernetes://httpbin-credential"], snapshot.Get(TypeUrls.Secret)!.Resources.Keys.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Translate_SameHostOnTwoHttpsServers_TheFirstKeepsIt()
    {
        var servers = """
              - {port: {number: 443, name: a, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: SIMPLE, credentialName: a}}
              - {port: {number: 443, name: b, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: SIMPLE, credentialName: b}}
            """;
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(servers)), Gateway);

        Assert.Equal("https.443.a.mygateway.istio-system", Assert.Single(Https(snapshot).FilterChains).Name);
        Assert.Contains(snapshot.Warnings, w => w.Contains("an earlier server or route on the port already serves every one of its server names", StringComparison.Ordinal));
    }

    [Fact]
    public void Translate_HttpsRedirect_AnswersThePlainServersHostsWithA301ToHttps()
    {
        var servers = """
              - {port: {number: 80, name: http, protocol: HTTP}, hosts: [httpbin.example.com, nohttps.example.com], tls: {httpsRedirect: true}}
              - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: SIMPLE, credentialName: httpbin-credential}}
            """;
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(servers)), Gateway);

        var route = Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, "http.80");
        Assert.Equal(["httpbin.example.com", "nohttps.example.com"], route.VirtualHosts.Select(v => v.Domains[0]));
        var redirect = Json<Route>("""{"name": "https_redirect", "match": {"prefix": "/"}, "redirect": {"httpsRedirect": true}}""");
        Assert.All(route.VirtualHosts, v => Assert.Equal(redirect, Assert.Single(v.Routes)));
        // The HTTPS server still routes.
        Assert.NotNull(Resource<RouteConfiguration>(snapshot, TypeUrls.RouteConfiguration, "https.443.https.mygateway.istio-system").VirtualHosts[0].Routes[0].Route_);
        Assert.Null(Resource<Listener>(snapshot, TypeUrls.Listener, "0.0.0.0_80").FilterChains[0].TransportSocket);
    }

    [Fact]
    public void Translate_SecretRotation_ChangesOnlyTheSdsVersion()
    {
        var before = MeshTranslator.Translate(Index(HttpbinGateway(SimpleServer), TlsSecret("httpbin-credential", "istio-system", Leaf("httpbin.example.com"))), Gateway);
        var after = MeshTranslator.Translate(Index(HttpbinGateway(SimpleServer), TlsSecret("httpbin-credential", "istio-system", Leaf("httpbin.example.com"))), Gateway);

        Assert.Equal(before.Get(TypeUrls.Listener)!.Select(null).Version, after.Get(TypeUrls.Listener)!.Select(null).Version);
        Assert.Equal(before.Get(TypeUrls.RouteConfiguration)!.Select(null).Version, after.Get(TypeUrls.RouteConfiguration)!.Select(null).Version);
        Assert.NotEqual(before.Get(TypeUrls.Secret)!.Select(null).Version, after.Get(TypeUrls.Secret)!.Select(null).Version);
    }

    [Fact]
    public void Translate_PlainAndHttpsServersOnOnePort_KeepsTheFirstKind()
    {
        var servers = """
              - {port: {number: 443, name: http, protocol: HTTP}, hosts: [httpbin.example.com]}
              - {port: {number: 443, name: https, protocol: HTTPS}, hosts: [httpbin.example.com], tls: {mode: SIMPLE, credentialName: httpbin-credential}}
            """;
        var snapshot = MeshTranslator.Translate(Index(HttpbinGateway(servers)), Gateway);

        Assert.Null(Assert.Single(Https(snapshot).FilterChains).TransportSocket);
        Assert.Contains(snapshot.Warnings, w => w.Contains("port 443 already serves plain HTTP", StringComparison.Ordinal));
    }
}
