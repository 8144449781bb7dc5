using System.Net;
using System.Net.Security;
using Bowline.Ca;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// The control plane's own TLS certificate for the secure xDS port, issued by the mesh CA (Istio's istiod DNS
/// certificate) and renewed at half its life, and again whenever the CA's trust bundle changes (a root rotation), so
/// it always chains to the root the mesh trusts. Each handshake reads <see cref="Current"/>: a renewal reaches new
/// connections and leaves open streams alone.
/// </summary>
/// <remarks>Thread-safe. A failed renewal keeps the current certificate, is logged and counted, and is retried in a minute.</remarks>
internal sealed partial class ServingCertificates : IDisposable
{
    /// <summary>The name Istio's agents verify istiod by (<c>ISTIOD_SAN</c>'s default), and the loopback name.</summary>
    public static readonly IReadOnlyList<string> DnsNames = ["istiod.istio-system.svc", "localhost"];

    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromMinutes(1);

    private readonly CertificateAuthority _ca;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly IReadOnlyList<IPAddress> _addresses;
    private readonly TimeSpan _ttl;
    private readonly Lock _gate = new();
    private readonly ITimer _timer;
    private volatile Issued _current;
    private IDisposable? _bundleWatch;
    private bool _disposed;

    public ServingCertificates(CertificateAuthority ca, ControlPlaneOptions options, TimeProvider time, ILogger<ServingCertificates> logger)
    {
        _ca = ca;
        _time = time;
        _logger = logger;
        _ttl = options.ServingCertificateTtl;
        _addresses = AddressesFor(options.BindAddress);
        // Issued now, so a CA that cannot sign fails the start rather than the first handshake.
        _current = Issue();
        _timer = time.CreateTimer(_ => Renew("half of its lifetime passed"), null, DueIn(_current), Timeout.InfiniteTimeSpan);
        WatchBundle();
    }

    /// <summary>What the next handshake presents: the leaf, its key and the intermediates.</summary>
    public SslStreamCertificateContext Current => _current.Context;

    /// <summary>The current certificate (for tests and the debug endpoint).</summary>
    public ServingCertificate Certificate => _current.Certificate;

    /// <summary>IP SANs: the bind address, or both loopbacks when it is loopback or a wildcard (clients then dial loopback).</summary>
    internal static IReadOnlyList<IPAddress> AddressesFor(IPAddress bind) =>
        IPAddress.IsLoopback(bind) || bind.Equals(IPAddress.Any) || bind.Equals(IPAddress.IPv6Any)
            ? [IPAddress.Loopback, IPAddress.IPv6Loopback]
            : [bind];

    private Issued Issue()
    {
        var certificate = _ca.IssueServingCertificate(DnsNames, _addresses, _ttl);
        return new Issued(certificate, SslStreamCertificateContext.Create(certificate.Certificate, certificate.Intermediates, offline: true));
    }

    private void Renew(string why)
    {
        lock (_gate)
        {
            if (_disposed)
            {
                return;
            }
            try
            {
                // The replaced certificate is not disposed: a handshake may still be reading it; the GC takes it.
                _current = Issue();
                Log.Renewed(_logger, why, _current.Certificate.NotAfter);
                _timer.Change(DueIn(_current), Timeout.InfiniteTimeSpan);
            }
            catch (Exception e) when (e is InvalidOperationException or System.Security.Cryptography.CryptographicException)
            {
                ControlPlaneMetrics.ServingCertificateFailures.Add(1);
                Log.RenewalFailed(_logger, why, _current.Certificate.NotAfter, e.Message);
                _timer.Change(RetryAfterFailure, Timeout.InfiniteTimeSpan);
            }
        }
    }

    /// <summary>A root rotation supersedes the bundle: renew under the new root, and watch the new bundle.</summary>
    private void WatchBundle()
    {
        var bundle = _ca.TrustBundle;
        _bundleWatch = bundle.ChangeToken.RegisterChangeCallback(_ =>
        {
            Renew("the mesh's trust bundle changed");
            WatchBundle();
        }, null);
    }

    private TimeSpan DueIn(Issued issued)
    {
        var renewAt = issued.Certificate.NotBefore + (issued.Certificate.NotAfter - issued.Certificate.NotBefore) / 2;
        var due = renewAt - _time.GetUtcNow();
        return due > TimeSpan.FromSeconds(1) ? due : TimeSpan.FromSeconds(1);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
        }
        _timer.Dispose();
        _bundleWatch?.Dispose();
    }

    private sealed record Issued(ServingCertificate Certificate, SslStreamCertificateContext Context);

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Information, Message = "xds: renewed the TLS port's serving certificate ({Why}); valid until {NotAfter:u}")]
        public static partial void Renewed(ILogger logger, string why, DateTimeOffset notAfter);

        [LoggerMessage(Level = LogLevel.Error, Message = "xds: could not renew the TLS port's serving certificate ({Why}); the current one stays in use until {NotAfter:u}, retrying in a minute: {Reason}")]
        public static partial void RenewalFailed(ILogger logger, string why, DateTimeOffset notAfter, string reason);
    }
}
