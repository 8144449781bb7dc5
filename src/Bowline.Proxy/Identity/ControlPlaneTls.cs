using System.Net.Security;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tls;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Identity;

/// <summary>
/// TLS toward the control plane's secure port (Istio's 15012), shared by the identity agent and the xDS client: the
/// server must chain to the mesh root the proxy was given (<see cref="ProxyOptions.ControlPlaneRootsPem"/>) or to the
/// trust bundle the CA has since delivered (<c>ROOTCA</c>: a root rotation needs no new file), and carry
/// the control plane's DNS name (<see cref="ProxyOptions.ControlPlaneServerName"/>); workload leaves carry only a
/// SPIFFE URI, so no workload can pass for the control plane. The client presents the workload certificate the
/// secret store holds at each handshake, so a connection opened after a rotation presents the new one.
/// </summary>
/// <remarks>Thread-safe: the callbacks run on handshake threads and read immutable state or the secret store.</remarks>
internal sealed partial class ControlPlaneTls
{
    private readonly X509Certificate2Collection _roots;
    private readonly string _serverName;
    private readonly SecretStore _secrets;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Stat _refusedServers;

    private ControlPlaneTls(X509Certificate2Collection roots, string serverName, SecretStore secrets, ProxyStats stats, TimeProvider time, ILogger logger)
    {
        _roots = roots;
        _serverName = serverName;
        _secrets = secrets;
        _time = time;
        _logger = logger;
        _refusedServers = stats.Get("control_plane.tls.server_verify_failed");
    }

    /// <summary>Null when the proxy was given no control-plane root: it speaks plaintext (15010).</summary>
    public static ControlPlaneTls? For(ProxyOptions options, SecretStore secrets, ProxyStats stats, TimeProvider time, ILogger logger) =>
        options.ControlPlaneRootsPem is { } pem ? new ControlPlaneTls(ParseRoots(pem), options.ControlPlaneServerName, secrets, stats, time, logger) : null;

    /// <summary>Parses the mesh root PEM; throws <see cref="FormatException"/> naming the problem when it holds no certificate.</summary>
    public static X509Certificate2Collection ParseRoots(string pem)
    {
        var roots = new X509Certificate2Collection();
        try
        {
            roots.ImportFromPem(pem);
        }
        catch (CryptographicException e)
        {
            throw new FormatException($"the control plane root is not PEM certificates ({e.Message}); pass the mesh CA's root-cert.pem");
        }
        return roots.Count > 0 ? roots : throw new FormatException("the control plane root holds no PEM CERTIFICATE; pass the mesh CA's root-cert.pem");
    }

    /// <summary>Whether a workload certificate is there to present (ADS on the secure port needs one).</summary>
    public bool HasClientCertificate => _secrets.Certificate(WorkloadAgent.CertificateSecretName) is not null;

    /// <summary>Completes once the agent has put a workload certificate in the store.</summary>
    public Task WaitForClientCertificateAsync(CancellationToken cancellationToken) =>
        _secrets.WaitUntilAsync(s => s.Certificate(WorkloadAgent.CertificateSecretName) is not null, cancellationToken);

    /// <summary>Sets <paramref name="handler"/>'s TLS: server verification and the current client certificate.</summary>
    public void Apply(SocketsHttpHandler handler)
    {
        handler.SslOptions = new SslClientAuthenticationOptions
        {
            // Our own check below decides; the name check is by the control plane's DNS SAN, not the dialled IP.
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => Verify(certificate, errors),
            LocalCertificateSelectionCallback = (_, _, _, _, _) => _secrets.Certificate(WorkloadAgent.CertificateSecretName)?.Leaf!,
            CertificateRevocationCheckMode = X509RevocationMode.NoCheck,
            // A resumed session keeps the identity of the handshake it resumes, so a reconnect after a rotation would
            // present the old certificate (and fail once it expires); a full handshake costs little once in a while.
            AllowTlsResume = false,
        };
    }

    private bool Verify(X509Certificate? presented, SslPolicyErrors errors)
    {
        string? failure;
        if (presented is null)
        {
            failure = $"it presented no certificate ({errors})";
        }
        else
        {
            var leaf = presented as X509Certificate2 ?? X509CertificateLoader.LoadCertificate(presented.GetRawCertData());
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.AddRange(_roots);
            // And the bundle the CA handed over with our certificate (over a channel this same check verified): after
            // a root rotation the control plane serves under the new root, which the file given at start predates.
            if (_secrets.TrustBundle(WorkloadAgent.TrustBundleSecretName) is { } bundle)
            {
                chain.ChainPolicy.CustomTrustStore.AddRange(bundle);
            }
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            chain.ChainPolicy.DisableCertificateDownloads = true;
            chain.ChainPolicy.VerificationTime = _time.GetUtcNow().UtcDateTime;
            chain.ChainPolicy.ApplicationPolicy.Add(new Oid("1.3.6.1.5.5.7.3.1"));
            failure = !chain.Build(leaf)
                ? $"its certificate ({leaf.Issuer}) does not chain to the mesh root given to this proxy: {string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()).Distinct())}"
                : !SpiffeId.SubjectAltNames(leaf).DnsNames.Contains(_serverName, StringComparer.OrdinalIgnoreCase)
                    ? $"its certificate does not name {_serverName} (DNS SANs: {string.Join(", ", SpiffeId.SubjectAltNames(leaf).DnsNames)})"
                    : null;
        }
        if (failure is null)
        {
            return true;
        }
        _refusedServers.Increment();
        LogServerRefused(_logger, failure);
        return false;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: refused the control plane's TLS certificate: {Reason}. Check that --ca-root-file is the root of the CA this control plane runs (counted in control_plane.tls.server_verify_failed)")]
    private static partial void LogServerRefused(ILogger logger, string reason);
}
