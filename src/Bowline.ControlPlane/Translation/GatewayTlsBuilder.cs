using Bowline.ControlPlane.Config;
using Envoy.Config.Core.V3;
using Envoy.Extensions.TransportSockets.Tls.V3;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// The <c>DownstreamTlsContext</c> of a Gateway HTTPS server, field for field as Istio's BuildListenerTLSContext writes
/// it: ALPN <c>h2,http/1.1</c>; a client certificate required for MUTUAL and ISTIO_MUTUAL (asked for, not required, for
/// OPTIONAL_MUTUAL); the certificate from the credential's SDS secret <c>kubernetes://&lt;credentialName&gt;</c> over
/// ADS (its CA from <c>kubernetes://&lt;credentialName&gt;-cacert</c>), from files, or for ISTIO_MUTUAL the gateway's
/// own <c>default</c> and <c>ROOTCA</c>; <c>tls_params</c> only where the server sets versions or ciphers.
/// </summary>
internal static class GatewayTlsBuilder
{
    /// <summary>What a gateway's HTTPS chain negotiates (Istio's ALPNHttp).</summary>
    public static readonly IReadOnlyList<string> HttpAlpn = ["h2", "http/1.1"];

    public static DownstreamTlsContext Context(ServerTlsSettings tls)
    {
        var common = new CommonTlsContext { AlpnProtocols = { HttpAlpn } };
        var context = new DownstreamTlsContext
        {
            CommonTlsContext = common,
            RequireClientCertificate = tls.Mode is ServerTlsMode.Mutual or ServerTlsMode.IstioMutual,
        };
        var validatesClient = tls.Mode is ServerTlsMode.Mutual or ServerTlsMode.IstioMutual or ServerTlsMode.OptionalMutual;
        var sans = new CertificateValidationContext();
        sans.MatchTypedSubjectAltNames.AddRange(tls.SubjectAltNames.Select(TlsContexts.ExactSan));
        if (tls.Mode == ServerTlsMode.IstioMutual)
        {
            common.TlsCertificateSdsSecretConfigs.Add(TlsContexts.AgentSecret(TlsContexts.WorkloadCertificate));
            common.CombinedValidationContext = Combined(sans, TlsContexts.AgentSecret(TlsContexts.RootCertificate));
            return context;
        }
        if (tls.CredentialName is { } credential)
        {
            common.TlsCertificateSdsSecretConfigs.Add(TlsContexts.ControlPlaneSecret(TlsContexts.CredentialResource(credential)));
            if (validatesClient)
            {
                common.CombinedValidationContext = Combined(sans, TlsContexts.ControlPlaneSecret(TlsContexts.CredentialResource(credential + TlsContexts.CredentialCaSuffix)));
            }
            else if (sans.MatchTypedSubjectAltNames.Count > 0)
            {
                common.ValidationContext = sans;
            }
        }
        else
        {
            // Istio's agent serves these files over SDS; Bowline's proxy reads the certificate at config time and the CA
            // bundle through the agent's file-root: name.
            common.TlsCertificates.Add(new TlsCertificate
            {
                CertificateChain = new DataSource { Filename = tls.ServerCertificate },
                PrivateKey = new DataSource { Filename = tls.PrivateKey },
            });
            if (validatesClient)
            {
                common.CombinedValidationContext = Combined(sans, TlsContexts.AgentSecret("file-root:" + tls.CaCertificates));
            }
        }
        if (tls.MinProtocolVersion is not null || tls.MaxProtocolVersion is not null || tls.CipherSuites.Count > 0)
        {
            common.TlsParams = new TlsParameters
            {
                TlsMinimumProtocolVersion = Protocol(tls.MinProtocolVersion),
                TlsMaximumProtocolVersion = Protocol(tls.MaxProtocolVersion),
                CipherSuites = { tls.CipherSuites },
            };
        }
        return context;
    }

    /// <summary>Istio's SNI hosts of a server: its hosts without the namespace part; none (match any) when one is <c>*</c>.</summary>
    public static IReadOnlyList<string> SniHosts(GatewayServer server)
    {
        var hosts = server.Hosts.Select(h => h.Contains('/', StringComparison.Ordinal) ? h.Split('/', 2)[1] : h).Select(h => h.ToLowerInvariant()).Distinct(StringComparer.Ordinal).ToList();
        return hosts.Contains("*") ? [] : hosts;
    }

    private static CommonTlsContext.Types.CombinedCertificateValidationContext Combined(CertificateValidationContext defaults, SdsSecretConfig roots) => new()
    {
        DefaultValidationContext = defaults,
        ValidationContextSdsSecretConfig = roots,
    };

    private static TlsParameters.Types.TlsProtocol Protocol(string? version) => version switch
    {
        "TLSv1_2" => TlsParameters.Types.TlsProtocol.Tlsv12,
        "TLSv1_3" => TlsParameters.Types.TlsProtocol.Tlsv13,
        _ => TlsParameters.Types.TlsProtocol.TlsAuto,
    };
}
