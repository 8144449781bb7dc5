using Bowline.Ca;
using Grpc.Core;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// Who an ADS stream is (Istio's ClientCertAuthenticator in front of pilot's authorize). On the plaintext port no one
/// is (Istio's 15010: the embedded default on loopback); on the TLS port the client must present a certificate that
/// chains to the mesh's roots and carries one SPIFFE ID of the trust domain, else the stream is refused with
/// UNAUTHENTICATED. Thread-safe.
/// </summary>
internal sealed partial class XdsAuthenticator(IServiceProvider services, TimeProvider time, ILogger<XdsAuthenticator> logger)
{
    private static readonly TimeSpan LogInterval = TimeSpan.FromSeconds(5);

    private readonly CertificateAuthority? _ca = services.GetService<CertificateAuthority>();
    private long _lastLog = long.MinValue;
    private long _unlogged;

    /// <summary>The identity the stream must be served as; null on the plaintext port. Throws UNAUTHENTICATED on the TLS port without a valid certificate.</summary>
    /// <param name="service">The xDS service the stream is for (<c>ADS</c>, <c>CSDS</c>), named in the refusal and the log line.</param>
    public NodeAuthorization? Authenticate(ServerCallContext context, string service)
    {
        var http = context.GetHttpContext();
        if (!http.Request.IsHttps)
        {
            return null;
        }
        string failure;
        if (http.Connection.ClientCertificate is not { } presented)
        {
            failure = $"{service} on the TLS xDS port needs a client certificate: present the workload certificate the mesh CA issued (get one first from the CA on this port with the bootstrap token)";
        }
        else if (_ca is null)
        {
            failure = "this control plane runs no CA, so it cannot verify client certificates";
        }
        else
        {
            var authentication = _ca.AuthenticateCertificate(presented);
            if (authentication.Identity is { } identity)
            {
                return new NodeAuthorization(identity, _ca.TrustDomain, context.Peer);
            }
            failure = authentication.Failure!;
        }
        ControlPlaneMetrics.XdsUnauthenticated.Add(1);
        LogRateLimited(service, context.Peer, failure);
        throw new RpcException(new Status(StatusCode.Unauthenticated, failure));
    }

    /// <summary>Anyone who can reach the port can fail here: at most one line every 5 s, with how many were not logged.</summary>
    private void LogRateLimited(string service, string peer, string failure)
    {
        var now = time.GetTimestamp();
        var last = Interlocked.Read(ref _lastLog);
        if ((last == long.MinValue || time.GetElapsedTime(last, now) >= LogInterval) && Interlocked.CompareExchange(ref _lastLog, now, last) == last)
        {
            LogUnauthenticated(logger, service, peer, failure, Interlocked.Exchange(ref _unlogged, 0));
        }
        else
        {
            Interlocked.Increment(ref _unlogged);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "xds: refused an unauthenticated {Service} stream from {Peer}: {Reason} ({Unlogged} more since the last such line; bowline_xds_unauthenticated_total counts them all)")]
    private static partial void LogUnauthenticated(ILogger logger, string service, string peer, string reason, long unlogged);
}
