using System.Net.Security;
using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Configuration;
using Envoy.Extensions.TransportSockets.Tls.V3;

namespace Bowline.Proxy.Tls;

/// <summary>
/// A filter chain's <c>envoy.transport_sockets.tls</c> with a <c>DownstreamTlsContext</c>, compiled once per update:
/// terminate TLS with the current certificate, verify the client (when required or presented) against the current
/// roots, and report the negotiated ALPN and the peer's identity. Per handshake it builds the options from the
/// secrets as they are now, so rotated certificates apply to new connections without touching open ones.
/// </summary>
internal sealed class DownstreamTls
{
    public const string TransportSocketName = "envoy.transport_sockets.tls";

    private DownstreamTls(TlsSettings settings, bool requireClientCertificate)
    {
        Settings = settings;
        RequireClientCertificate = requireClientCertificate;
        // Istio names the mesh trust bundle ROOTCA: a peer verified against it must be a mesh workload (an SVID).
        RequireSpiffe = settings.ValidationSource?.SdsName == "ROOTCA";
    }

    public TlsSettings Settings { get; }

    public bool RequireClientCertificate { get; }

    public bool RequireSpiffe { get; }

    public static DownstreamTls Compile(Envoy.Config.Core.V3.TransportSocket socket, string where)
    {
        XdsFields.Check(socket, where + " transport_socket", "name", "typed_config");
        if (socket.TypedConfig is not { } typed || !typed.TryUnpack<DownstreamTlsContext>(out var context))
        {
            throw new ProxyConfigException($"{where}: transport_socket {socket.Name} ({socket.TypedConfig?.TypeUrl ?? "no typed_config"}) is not supported; use {TransportSocketName} with a DownstreamTlsContext");
        }
        XdsFields.Check(context, where + " DownstreamTlsContext", "common_tls_context", "require_client_certificate");
        var settings = TlsSettings.Compile(context.CommonTlsContext, where);
        if (settings.CertificateSource is null)
        {
            throw new ProxyConfigException($"{where}: a DownstreamTlsContext needs a certificate (tls_certificates or tls_certificate_sds_secret_configs)");
        }
        var require = context.RequireClientCertificate ?? false;
        if (require && settings.ValidationSource is null)
        {
            throw new ProxyConfigException($"{where}: require_client_certificate needs a validation context with trusted roots");
        }
        return new DownstreamTls(settings, require);
    }

    /// <summary>The options for one handshake, or an error naming the missing secret (the chain is not warm yet).</summary>
    /// <remarks>
    /// <paramref name="offered"/> is the client's ALPN list as the TLS inspector read it: when it shares nothing with
    /// the configured list, no ALPN is negotiated (BoringSSL's behaviour, which Envoy relies on: mesh clients offer
    /// <c>istio</c>, the server lists <c>h2</c>) instead of the handshake failing as OpenSSL's default would.
    /// </remarks>
    public (SslServerAuthenticationOptions? Options, string? Missing) ServerOptions(SecretStore secrets, IReadOnlyList<string> offered, Action<PeerVerifier.Failure, string?, PeerIdentity?> verified)
    {
        var certificate = Settings.CertificateSource!.Certificate(secrets);
        if (certificate is null)
        {
            return (null, Settings.CertificateSource.Describe());
        }
        X509Certificate2Collection? roots = null;
        if (Settings.ValidationSource is { } validation && (roots = validation.Bundle(secrets)) is null)
        {
            return (null, validation.Describe());
        }
        var options = new SslServerAuthenticationOptions
        {
            ServerCertificateContext = certificate.Context,
            EnabledSslProtocols = Settings.Protocols,
            CipherSuitesPolicy = Settings.Ciphers,
            ApplicationProtocols = Settings.Alpn.Count > 0 && Settings.Alpn.Any(p => offered.Contains(p.ToString())) ? Settings.Alpn : null,
            ClientCertificateRequired = roots is not null,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
        };
        options.CertificateChainPolicy = Settings.ChainPolicy(roots);
        options.RemoteCertificateValidationCallback = (_, presented, chain, errors) =>
        {
            if (presented is null && !RequireClientCertificate)
            {
                // Optional client certificates (Envoy without require_client_certificate): no peer identity.
                verified(PeerVerifier.Failure.None, null, null);
                return true;
            }
            if (roots is null)
            {
                verified(PeerVerifier.Failure.None, null, null);
                return true;
            }
            var leaf = presented as X509Certificate2 ?? (presented is null ? null : new X509Certificate2(presented));
            var (failure, reason, peer) = PeerVerifier.Verify(leaf, errors, chain, Settings, peerIsClient: true, RequireSpiffe);
            verified(failure, reason, peer);
            return failure == PeerVerifier.Failure.None;
        };
        return (options, null);
    }
}
