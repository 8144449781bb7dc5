using System.Net.Security;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>
/// Certificates a test makes itself, well-formed or not, signed with the mesh CA's own key from the harness's CA
/// directory (Istio's plugin-CA layout: <c>ca-cert.pem</c>, <c>ca-key.pem</c>), or self-signed. Leaves are shaped as
/// the CA shapes its own (docs/security.md, "What a leaf contains") unless a test asks for a flaw.
/// </summary>
internal sealed class MeshCertificates : IDisposable
{
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private readonly X509Certificate2 _ca;

    private MeshCertificates(X509Certificate2 ca) => _ca = ca;

    /// <summary>The signing certificate with its key, as the control plane's CA loaded it.</summary>
    public X509Certificate2 Ca => _ca;

    public static MeshCertificates Load(string caDirectory) =>
        new(X509Certificate2.CreateFromPemFile(Path.Combine(caDirectory, "ca-cert.pem"), Path.Combine(caDirectory, "ca-key.pem")));

    /// <summary>
    /// A leaf with <paramref name="uris"/> as its URI SANs, valid from <paramref name="notBefore"/> to
    /// <paramref name="notAfter"/> (default: from the CA's own start for a day), signed by the mesh CA unless
    /// <paramref name="selfSigned"/>, and a CA certificate when <paramref name="certificateAuthority"/>.
    /// </summary>
    public X509Certificate2 Leaf(string[] uris, DateTimeOffset? notBefore = null, DateTimeOffset? notAfter = null, bool certificateAuthority = false, bool selfSigned = false)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest("", key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        foreach (var uri in uris)
        {
            san.AddUri(new Uri(uri));
        }
        request.CertificateExtensions.Add(san.Build(critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuth), new Oid(ClientAuth)], critical: false));
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        // Within the CA's validity, which the signer enforces: the CA backdates itself, so its start is in the past.
        var from = notBefore ?? _ca.NotBefore.ToUniversalTime();
        var to = notAfter ?? from.AddDays(1);
        if (selfSigned)
        {
            return request.CreateSelfSigned(from, to);
        }
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(_ca, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        using var signed = request.Create(_ca, from, to, RandomNumberGenerator.GetBytes(16));
        return signed.CopyWithPrivateKey(key);
    }

    /// <summary>A well-formed workload leaf for <c>spiffe://cluster.local/ns/default/sa/<paramref name="serviceAccount"/></c>.</summary>
    public X509Certificate2 Workload(string serviceAccount) => Leaf([$"spiffe://cluster.local/ns/default/sa/{serviceAccount}"]);

    public void Dispose() => _ca.Dispose();
}

/// <summary>
/// A mesh client without a sidecar: TLS straight to a sidecar's inbound port with Istio's ALPN <c>istio</c> (what a
/// client sidecar offers, so the mTLS chain is the one chosen), an optional client certificate, and one raw HTTP/1.1
/// request whose bytes nothing rewrites on the way.
/// </summary>
internal static class MeshTlsClient
{
    /// <summary>
    /// What became of one connection: the error that ended it (the handshake's, or a read's when a TLS 1.3 server
    /// refuses the client's certificate after the client finished), the response read until the server closed, and
    /// the certificate the server presented.
    /// </summary>
    public sealed record Outcome(Exception? Error, string Response, X509Certificate2? ServerCertificate)
    {
        /// <summary>The response's status code, or 0 when the server sent no response.</summary>
        public int Status => Response.StartsWith("HTTP/1.1 ", StringComparison.Ordinal) && int.TryParse(Response.AsSpan(9, 3), out var status) ? status : 0;
    }

    public static async Task<Outcome> SendAsync(int port, X509Certificate2? clientCertificate, string requestTarget, string host = "reviews:9080", string method = "GET")
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(System.Net.IPAddress.Loopback, port).Within(Timeouts.Short);
        await using var tls = new SslStream(new NetworkStream(socket, ownsSocket: false));
        X509Certificate2? server = null;
        var options = new SslClientAuthenticationOptions
        {
            TargetHost = host.Split(':')[0],
            ApplicationProtocols = [new SslApplicationProtocol("istio")],
            // Presented whatever the server's list of acceptable CAs says: a refusal must come from the server.
            LocalCertificateSelectionCallback = (_, _, _, _, _) => clientCertificate!,
            ClientCertificates = clientCertificate is null ? null : [clientCertificate],
            // The server's identity is the caller's to check, on the certificate returned.
            RemoteCertificateValidationCallback = (_, certificate, _, _) =>
            {
                server = certificate is null ? null : X509CertificateLoader.LoadCertificate(certificate.GetRawCertData());
                return true;
            },
        };
        if (clientCertificate is null)
        {
            options.LocalCertificateSelectionCallback = null;
        }
        var response = new StringBuilder();
        try
        {
            await tls.AuthenticateAsClientAsync(options, Timeouts.Token(Timeouts.Short)).Within(Timeouts.Short);
            await tls.WriteAsync(Encoding.ASCII.GetBytes($"{method} {requestTarget} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")).AsTask().Within(Timeouts.Short);
            var buffer = new byte[16 * 1024];
            int read;
            while ((read = await tls.ReadAsync(buffer).AsTask().Within(Timeouts.Short)) > 0)
            {
                response.Append(Encoding.ASCII.GetString(buffer, 0, read));
            }
        }
        catch (Exception e) when (e is System.Security.Authentication.AuthenticationException or IOException)
        {
            return new Outcome(e, response.ToString(), server);
        }
        return new Outcome(null, response.ToString(), server);
    }
}
