using System.Net.Security;
using System.Security.Authentication;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;

namespace Bowline.ControlPlane.Xds;

/// <summary>The TLS side of the secure xDS port: the current serving certificate per handshake, client certificates asked for and optional.</summary>
internal static class SecureXdsListener
{
    public static void Configure(ListenOptions listen, ServingCertificates certificates)
    {
        listen.Protocols = HttpProtocols.Http2;
        listen.UseHttps(new TlsHandshakeCallbackOptions
        {
            OnConnection = _ => ValueTask.FromResult(new SslServerAuthenticationOptions
            {
                ServerCertificateContext = certificates.Current,
                EnabledSslProtocols = SslProtocols.Tls12 | SslProtocols.Tls13,
                // Asked for, not required: a proxy without a certificate yet may still reach the CA with its token.
                ClientCertificateRequired = true,
                CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
                // A resumed session would carry the client certificate of the handshake it resumes: after a rotation
                // the server would keep seeing the old one. Every connection proves its current certificate.
                AllowTlsResume = false,
                // Accepted here and verified per call (XdsAuthenticator, the CA) against the trust bundle as it is at
                // that moment, so a refusal is a gRPC status naming the problem rather than a bare TLS alert, and a
                // root rotation applies without new handshakes. The handshake has proved the key is the caller's.
                RemoteCertificateValidationCallback = static (_, _, _, _) => true,
            }),
        });
    }
}
