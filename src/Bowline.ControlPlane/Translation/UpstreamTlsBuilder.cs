using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Cluster.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;
using HttpProtocolOptions = Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptions;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// The client side of TLS on an outbound cluster, as Istio's cluster builder decides it (pilot/pkg/networking/core
/// cluster_tls.go, and pilot/pkg/xds/endpoints mtls_checker.go for the endpoints): a DestinationRule's <c>tls</c> when
/// it has one (DISABLE, SIMPLE, MUTUAL, ISTIO_MUTUAL), else automatic mTLS: a <c>tlsMode-istio</c> transport socket
/// match (ISTIO_MUTUAL) for endpoints whose EDS metadata says they have a sidecar, plaintext for the others.
/// </summary>
internal static class UpstreamTlsBuilder
{
    public const string IstioMatch = "tlsMode-istio";
    public const string DisabledMatch = "tlsMode-disabled";

    /// <summary>Sets the cluster's transport socket or transport socket matches; <paramref name="options"/> gets auto SNI and SAN validation for TLS origination.</summary>
    public static void Apply(Cluster cluster, HttpProtocolOptions options, bool http2, UpstreamTarget target, SnapshotBuilder snapshot)
    {
        if (target.Policy?.Tls is { } tls)
        {
            switch (tls.Mode)
            {
                case ClientTlsSettings.Disable:
                    return;
                case ClientTlsSettings.IstioMutual when !target.Security.MeshMtls:
                    // A security-weakening no-op must never be silent.
                    snapshot.Warn($"{target.RuleWhere}: tls mode ISTIO_MUTUAL is NOT applied: mesh mTLS is off (the control plane's MeshMtls option, which bowline up turns on with the CA), so traffic to {target.Service.Hostname} is plaintext");
                    return;
                case ClientTlsSettings.IstioMutual:
                    // The user's sni and subjectAltNames win; else Istio's SNI and the destination's identities.
                    var sans = tls.SubjectAltNames.Count > 0 ? tls.SubjectAltNames : ServiceAccounts(target);
                    cluster.TransportSocket = TlsContexts.Tls(TlsContexts.IstioMutual(tls.Sni ?? Sni(target), sans, http2));
                    return;
                default:
                    cluster.TransportSocket = TlsContexts.Tls(Originate(tls, options, http2, target, snapshot));
                    return;
            }
        }
        if (!AutoMtls(target))
        {
            return;
        }
        var istioMatch = new Struct();
        istioMatch.Fields[TlsContexts.TlsModeKey] = Value.ForString(MeshEndpoint.IstioTlsMode);
        cluster.TransportSocketMatches.Add(new Cluster.Types.TransportSocketMatch
        {
            Name = IstioMatch,
            Match = istioMatch,
            TransportSocket = TlsContexts.Tls(TlsContexts.IstioMutual(Sni(target), ServiceAccounts(target), http2)),
        });
        // Endpoints without the metadata (no sidecar, or a sidecar whose policy disables mTLS on the port) get plaintext.
        cluster.TransportSocketMatches.Add(new Cluster.Types.TransportSocketMatch { Name = DisabledMatch, Match = new Struct(), TransportSocket = TlsContexts.RawBuffer() });
    }

    /// <summary>
    /// Istio's automatic mTLS: mesh mTLS on, no <c>tls</c> in the DestinationRule, a destination inside the mesh (not a
    /// MESH_EXTERNAL ServiceEntry) whose namespace-wide (or mesh-wide) PeerAuthentication is not DISABLE.
    /// </summary>
    public static bool AutoMtls(UpstreamTarget target) =>
        target.Security.MeshMtls && target.Policy?.Tls is null && !target.Service.MeshExternal
        && target.Index.Config.PeerAuthentication.NamespaceMode(target.Service.Namespace) != MutualTlsMode.Disable;

    /// <summary>
    /// The <c>tlsMode</c> each endpoint's EDS metadata carries, or null for none (Istio's mtlsChecker): with a
    /// DestinationRule tls mode, the sidecar's mode when that mode is ISTIO_MUTUAL; else the sidecar's mode unless
    /// the endpoint's own PeerAuthentication disables mTLS on the port. Null when no endpoint gets metadata at all
    /// (mesh mTLS off, or a proxyless client, which gets no automatic mTLS).
    /// </summary>
    public static Func<MeshEndpoint, string?>? EndpointTlsMode(UpstreamTarget target, ProxyKind kind)
    {
        if (!target.Security.MeshMtls || kind == ProxyKind.ProxylessGrpc)
        {
            return null;
        }
        var ruleMode = DestinationRuleTlsMode(target.Rule, target.Subset, target.Port.Number);
        // The destination's sidecar keys port-level policies by the workload's port: the service's target port.
        var workloadPort = target.Port.TargetPort ?? target.Port.Number;
        var policies = target.Index.Config.PeerAuthentication;
        return endpoint =>
        {
            if (endpoint.TlsMode is "" or MeshEndpoint.DisabledTlsMode)
            {
                return null;
            }
            var enabled = ruleMode is { } mode
                ? mode == ClientTlsSettings.IstioMutual
                : policies.ForWorkload(endpoint.Namespace ?? target.Service.Namespace, endpoint.Labels).ModeFor(workloadPort) != MutualTlsMode.Disable;
            return enabled ? endpoint.TlsMode : null;
        };
    }

    /// <summary>Proxyless gRPC clients: Istio's gRPC generator sends no automatic mTLS, and TLS only through xDS credentials Bowline cannot provision.</summary>
    public static void WarnProxyless(UpstreamTarget target, SnapshotBuilder snapshot)
    {
        if (target.Policy?.Tls is { Mode: not ClientTlsSettings.Disable } tls)
        {
            snapshot.Warn($"{target.RuleWhere}: tls mode {tls.Mode} is not sent to proxyless gRPC clients: they speak TLS only through xDS credentials with a certificate provider in their own bootstrap (gRFC A29), which Bowline does not provision; their calls to {target.Service.Hostname} are plaintext, and a STRICT destination refuses them");
        }
    }

    /// <summary>Istio's default SNI of the cluster: <c>outbound_.9080_.v1_.reviews.default.svc.cluster.local</c>.</summary>
    private static string Sni(UpstreamTarget target) => TlsContexts.IstioSni(target.Port.Number, target.Subset, target.Service.Hostname);

    /// <summary>
    /// The identities the destination's workloads run as, sorted: the SPIFFE ID of every endpoint's service account
    /// (Istio's ServiceAccounts of the service, all ports and subsets; an endpoint with a sidecar and no service
    /// account is taken to run as <c>default</c>, as a pod does), and a ServiceEntry's <c>subjectAltNames</c>.
    /// </summary>
    private static IReadOnlyList<string> ServiceAccounts(UpstreamTarget target)
    {
        var names = new SortedSet<string>(StringComparer.Ordinal);
        foreach (var endpoint in target.Index.Endpoints(target.Service, target.Port, null))
        {
            var account = endpoint.ServiceAccount ?? (endpoint.TlsMode == MeshEndpoint.IstioTlsMode ? "default" : null);
            if (account is not null)
            {
                names.Add(target.Security.SpiffeId(endpoint.Namespace ?? target.Service.Namespace, account));
            }
        }
        names.UnionWith(target.Service.SubjectAltNames);
        return [.. names];
    }

    /// <summary>
    /// TLS origination (SIMPLE, MUTUAL), as Istio's constructUpstreamTLS: client certificate and roots from files (as
    /// Envoy DataSource filenames) or from a credentialName's SDS secrets, the platform's roots when none are named,
    /// and Envoy's auto SNI and auto SAN validation from the request's host when no sni (and no subjectAltNames) is given.
    /// </summary>
    private static UpstreamTlsContext Originate(ClientTlsSettings tls, HttpProtocolOptions options, bool http2, UpstreamTarget target, SnapshotBuilder snapshot)
    {
        var common = new CommonTlsContext { TlsParams = TlsContexts.UpstreamTlsParams() };
        // Auto SNI takes the name from each request's host; a TCP connection has none, so it gets the service's name.
        var autoSni = tls.Sni is null && target.Port.IsHttp;
        var autoSanValidation = autoSni && tls.SubjectAltNames.Count == 0 && !tls.InsecureSkipVerify;
        if (autoSni || autoSanValidation)
        {
            options.UpstreamHttpProtocolOptions ??= new UpstreamHttpProtocolOptions();
            options.UpstreamHttpProtocolOptions.AutoSni = autoSni;
            options.UpstreamHttpProtocolOptions.AutoSanValidation = autoSanValidation;
        }
        // Istio's rule: a ServiceEntry's destination without subjectAltNames is checked against the entry's identities.
        var sans = tls.SubjectAltNames.Count > 0 || target.Service.ShortName is not null ? tls.SubjectAltNames : ServiceAccounts(target);
        var validation = new CertificateValidationContext();
        validation.MatchTypedSubjectAltNames.AddRange(sans.Select(TlsContexts.ExactSan));
        if (tls.CredentialName is { } credential)
        {
            // Served over SDS from the Secret in the proxy's namespace (SecretBuilder), which warns when it is missing.
            var resource = TlsContexts.CredentialResource(credential);
            if (tls.Mode == ClientTlsSettings.Mutual)
            {
                common.TlsCertificateSdsSecretConfigs.Add(TlsContexts.ControlPlaneSecret(resource));
            }
            if (!tls.InsecureSkipVerify)
            {
                common.CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
                {
                    DefaultValidationContext = validation,
                    ValidationContextSdsSecretConfig = TlsContexts.ControlPlaneSecret(TlsContexts.CredentialResource(credential + TlsContexts.CredentialCaSuffix)),
                };
            }
        }
        else
        {
            if (tls.Mode == ClientTlsSettings.Mutual)
            {
                common.TlsCertificates.Add(new TlsCertificate
                {
                    CertificateChain = new DataSource { Filename = tls.ClientCertificate },
                    PrivateKey = new DataSource { Filename = tls.PrivateKey },
                });
            }
            if (tls.InsecureSkipVerify)
            {
                // Istio's empty validation context: the server is not verified.
                common.ValidationContext = new CertificateValidationContext();
            }
            else if (tls.CaCertificates is { } roots)
            {
                validation.TrustedCa = new DataSource { Filename = roots };
                common.ValidationContext = validation;
            }
            else
            {
                common.CombinedValidationContext = new CommonTlsContext.Types.CombinedCertificateValidationContext
                {
                    DefaultValidationContext = validation,
                    ValidationContextSdsSecretConfig = TlsContexts.AgentSecret(TlsContexts.SystemRoots),
                };
            }
        }
        if (http2)
        {
            common.AlpnProtocols.Add("h2");
        }
        return new UpstreamTlsContext { Sni = tls.Sni ?? (target.Port.IsHttp ? "" : target.Service.Hostname), CommonTlsContext = common };
    }

    /// <summary>Istio's tlsModeForDestinationRule: the subset's tls for the port, else the rule's; a port-level tls overrides.</summary>
    private static string? DestinationRuleTlsMode(DestinationRule? rule, string? subset, int port)
    {
        if (rule is null)
        {
            return null;
        }
        if (subset is null)
        {
            return ModeForPort(rule.Policy, port);
        }
        return rule.Subsets.FirstOrDefault(s => s.Name == subset) is { } named ? ModeForPort(named.Policy, port) ?? ModeForPort(rule.Policy, port) : null;
    }

    private static string? ModeForPort(TrafficPolicy? policy, int port) =>
        (policy?.PortLevelSettings.FirstOrDefault(p => p.Port == port && p.Tls is not null)?.Tls ?? policy?.Tls)?.Mode;
}
