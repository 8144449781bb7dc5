using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// The Envoy TLS messages of Istio's mesh mTLS, field for field as Istio's pilot writes them
/// (pilot/pkg/security/authn/utils BuildInboundTLS, pilot/pkg/networking/core/cluster_tls.go, pkg/model
/// ConstructSdsSecretConfig), except that SAN matchers use the typed <c>match_typed_subject_alt_names</c> (Istio still
/// writes the deprecated untyped form, which Bowline's proxy refuses).
/// </summary>
internal static class TlsContexts
{
    public const string TlsTransportSocket = "envoy.transport_sockets.tls";
    public const string RawBufferTransportSocket = "envoy.transport_sockets.raw_buffer";

    /// <summary>The raw_buffer extension's config type, whose message is empty (its proto is not among those Bowline compiles).</summary>
    public const string RawBufferType = "type.googleapis.com/envoy.extensions.transport_sockets.raw_buffer.v3.RawBuffer";

    public const string TlsInspectorFilter = "envoy.filters.listener.tls_inspector";
    public const string HttpInspectorFilter = "envoy.filters.listener.http_inspector";

    /// <summary>The SDS secret of the workload's certificate and key, served by the proxy's agent.</summary>
    public const string WorkloadCertificate = "default";

    /// <summary>The SDS secret of the mesh's trust bundle.</summary>
    public const string RootCertificate = "ROOTCA";

    /// <summary>The cluster the proxy's bootstrap defines for its agent's SDS server (Istio's name).</summary>
    public const string SdsCluster = "sds-grpc";

    /// <summary>The filter_metadata key of an endpoint's transport socket match, and the key Istio matches on.</summary>
    public const string TransportSocketMatchKey = "envoy.transport_socket_match";
    public const string TlsModeKey = "tlsMode";

    /// <summary>Istio's server-side cipher suites for mesh mTLS (SupportedCiphers).</summary>
    public static readonly IReadOnlyList<string> IstioCipherSuites =
    [
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "AES256-GCM-SHA384",
        "AES128-GCM-SHA256",
    ];

    /// <summary>Istio's ALPN of an in-mesh client (with metadata exchange): <c>istio-peer-exchange</c>, <c>istio</c>, and <c>h2</c> for HTTP/2 clusters.</summary>
    public static IReadOnlyList<string> InMeshAlpn(bool http2) => http2 ? ["istio-peer-exchange", "istio", "h2"] : ["istio-peer-exchange", "istio"];

    /// <summary>
    /// Every ALPN an Istio client sends over mesh mTLS (Istio's allIstioMtlsALPNs): what a PERMISSIVE port's TLS chain
    /// matches on, so that other TLS (an app's own HTTPS) is not taken for mesh traffic.
    /// </summary>
    public static readonly IReadOnlyList<string> IstioMtlsAlpns = ["istio", "istio-peer-exchange", "istio-http/1.0", "istio-http/1.1", "istio-h2"];

    /// <summary>The TLS inspector as Istio configures it (a 512-byte first read instead of Envoy's 64 KiB).</summary>
    public static Envoy.Config.Listener.V3.ListenerFilter TlsInspector() => new()
    {
        Name = TlsInspectorFilter,
        TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.TlsInspector.V3.TlsInspector { InitialReadBufferSize = 512 }),
    };

    public static Envoy.Config.Listener.V3.ListenerFilter HttpInspector() => new()
    {
        Name = HttpInspectorFilter,
        TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Listener.HttpInspector.V3.HttpInspector()),
    };

    /// <summary>
    /// An SDS secret from the proxy's agent, as Istio writes it for <c>default</c> and <c>ROOTCA</c>: gRPC to the
    /// bootstrap's <c>sds-grpc</c> cluster, node only on the first message, no initial fetch timeout (the
    /// listener or cluster waits for the certificate instead of serving without it).
    /// </summary>
    public static SdsSecretConfig AgentSecret(string name) => new()
    {
        Name = name,
        SdsConfig = new ConfigSource
        {
            ApiConfigSource = new ApiConfigSource
            {
                ApiType = ApiConfigSource.Types.ApiType.Grpc,
                SetNodeOnFirstMessageOnly = true,
                TransportApiVersion = ApiVersion.V3,
                GrpcServices = { new GrpcService { EnvoyGrpc = new GrpcService.Types.EnvoyGrpc { ClusterName = SdsCluster } } },
            },
            InitialFetchTimeout = Duration.FromTimeSpan(TimeSpan.Zero),
            ResourceApiVersion = ApiVersion.V3,
        },
    };

    /// <summary>A <c>credentialName</c> secret, fetched from the control plane over ADS (Istio's SDSAdsConfig).</summary>
    public static SdsSecretConfig ControlPlaneSecret(string name) => new()
    {
        Name = name,
        SdsConfig = new ConfigSource { Ads = new AggregatedConfigSource(), ResourceApiVersion = ApiVersion.V3 },
    };

    /// <summary>Istio's SDS name of a credentialName: <c>kubernetes://name</c> unless it already names its store.</summary>
    public static string CredentialResource(string credentialName) =>
        credentialName.StartsWith("kubernetes://", StringComparison.Ordinal) || credentialName.StartsWith("kubernetes-gateway://", StringComparison.Ordinal) || credentialName.StartsWith("configmap://", StringComparison.Ordinal)
            ? credentialName
            : "kubernetes://" + credentialName;

    /// <summary>Istio's suffix of a credential's CA certificate secret.</summary>
    public const string CredentialCaSuffix = "-cacert";

    /// <summary>The trust bundle Istio's agent serves from the platform's trust store, when a SIMPLE or MUTUAL destination names no caCertificates.</summary>
    public const string SystemRoots = "file-root:system";

    /// <summary>
    /// The server side of mesh mTLS on a sidecar's inbound port: the workload certificate, a client certificate
    /// required and verified against the mesh's roots, from this trust domain, TLS 1.2 to 1.3 with Istio's ciphers.
    /// </summary>
    public static DownstreamTlsContext InboundMutualTls(string trustDomain) => new()
    {
        RequireClientCertificate = true,
        CommonTlsContext = new CommonTlsContext
        {
            TlsParams = new TlsParameters
            {
                TlsMinimumProtocolVersion = TlsParameters.Types.TlsProtocol.Tlsv12,
                TlsMaximumProtocolVersion = TlsParameters.Types.TlsProtocol.Tlsv13,
                CipherSuites = { IstioCipherSuites },
            },
            // Not "istio": that ALPN only selects the chain and must not reach the negotiation of h2 or HTTP/1.1.
            AlpnProtocols = { "h2", "http/1.1" },
            TlsCertificateSdsSecretConfigs = { AgentSecret(WorkloadCertificate) },
            CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
            {
                DefaultValidationContext = new CertificateValidationContext
                {
                    MatchTypedSubjectAltNames = { new SubjectAltNameMatcher { SanType = SubjectAltNameMatcher.Types.SanType.Uri, Matcher = new Envoy.Type.Matcher.V3.StringMatcher { Prefix = $"spiffe://{trustDomain}/" } } },
                },
                ValidationContextSdsSecretConfig = AgentSecret(RootCertificate),
            },
        },
    };

    /// <summary>
    /// The client side of mesh mTLS (ISTIO_MUTUAL): the workload certificate, the server verified against the mesh's
    /// roots and the destination's identities, Istio's SNI for the cluster and its in-mesh ALPN.
    /// </summary>
    /// <param name="subjectAltNames">Exact names the server's certificate must carry; none: any workload of the mesh.</param>
    public static UpstreamTlsContext IstioMutual(string sni, IReadOnlyList<string> subjectAltNames, bool http2)
    {
        var validation = new CertificateValidationContext();
        validation.MatchTypedSubjectAltNames.AddRange(subjectAltNames.Select(ExactSan));
        return new UpstreamTlsContext
        {
            Sni = sni,
            CommonTlsContext = new CommonTlsContext
            {
                TlsParams = UpstreamTlsParams(),
                AlpnProtocols = { InMeshAlpn(http2) },
                TlsCertificateSdsSecretConfigs = { AgentSecret(WorkloadCertificate) },
                CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
                {
                    DefaultValidationContext = validation,
                    ValidationContextSdsSecretConfig = AgentSecret(RootCertificate),
                },
            },
        };
    }

    /// <summary>Istio's client TLS versions (defaultUpstreamCommonTLSContext): 1.2 to 1.3, the platform's ciphers.</summary>
    public static TlsParameters UpstreamTlsParams() => new()
    {
        TlsMinimumProtocolVersion = TlsParameters.Types.TlsProtocol.Tlsv12,
        TlsMaximumProtocolVersion = TlsParameters.Types.TlsProtocol.Tlsv13,
    };

    /// <summary>
    /// An exact SAN matcher. A SPIFFE ID (or any other URI) is matched as a URI SAN, anything else as a DNS SAN, since
    /// Bowline's matchers are typed where Istio's untyped ones match a name of any type.
    /// </summary>
    public static SubjectAltNameMatcher ExactSan(string name) => new()
    {
        SanType = name.Contains("://", StringComparison.Ordinal) ? SubjectAltNameMatcher.Types.SanType.Uri : SubjectAltNameMatcher.Types.SanType.Dns,
        Matcher = new Envoy.Type.Matcher.V3.StringMatcher { Exact = name },
    };

    public static TransportSocket Tls(IMessage context) => new() { Name = TlsTransportSocket, TypedConfig = Any.Pack(context) };

    /// <summary>Plaintext, as Istio names it in a transport socket match.</summary>
    public static TransportSocket RawBuffer() => new()
    {
        Name = RawBufferTransportSocket,
        TypedConfig = new Any { TypeUrl = RawBufferType, Value = ByteString.Empty },
    };

    /// <summary>An endpoint's metadata that selects the <c>tlsMode-istio</c> transport socket match (Istio's AppendLbEndpointMetadata).</summary>
    public static Metadata EndpointTlsMode(string tlsMode)
    {
        var match = new Struct();
        match.Fields[TlsModeKey] = Value.ForString(tlsMode);
        var metadata = new Metadata();
        metadata.FilterMetadata[TransportSocketMatchKey] = match;
        return metadata;
    }

    /// <summary>Istio's default SNI for mesh mTLS: <c>outbound_.&lt;port&gt;_.&lt;subset&gt;_.&lt;host&gt;</c> (BuildDNSSrvSubsetKey).</summary>
    public static string IstioSni(int port, string? subset, string host) => $"outbound_.{port}_.{subset}_.{host}";
}
