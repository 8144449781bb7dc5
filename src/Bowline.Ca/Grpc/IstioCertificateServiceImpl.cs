using Bowline.Ca.Authentication;
using Bowline.Ca.Grpc.V1;
using Grpc.Core;

namespace Bowline.Ca.Grpc;

/// <summary>
/// Istio's <c>istio.v1.auth.IstioCertificateService</c>: authenticate the caller, then sign its CSR for exactly the
/// identity it proved. Refusals are precise gRPC statuses, so the agent's log says what to fix.
/// </summary>
internal sealed class IstioCertificateServiceImpl(CertificateAuthority ca, ICallerAuthenticator authenticator)
    : IstioCertificateService.IstioCertificateServiceBase
{
    // Long enough for any TTL the CA accepts, short enough that TimeSpan cannot overflow.
    private const long MaxValiditySeconds = 100L * 365 * 24 * 3600;

    public override async Task<IstioCertificateResponse> CreateCertificate(IstioCertificateRequest request, ServerCallContext context)
    {
        ca.Metrics.CsrReceived();
        var authentication = await AuthenticateAsync(context).ConfigureAwait(false);
        if (authentication.Identity is not { } identity)
        {
            ca.AuthenticationFailed(context.Peer, authentication.Failure!);
            throw new RpcException(new Status(StatusCode.Unauthenticated, authentication.Failure!));
        }

        // Istio's field is in seconds; 0 (unset) asks for the default. request.metadata (impersonation) is not read.
        TimeSpan? ttl = request.ValidityDuration > 0 ? TimeSpan.FromSeconds(Math.Min(request.ValidityDuration, MaxValiditySeconds)) : null;
        try
        {
            var response = new IstioCertificateResponse();
            response.CertChain.AddRange(ca.Sign(request.Csr, identity, ttl));
            return response;
        }
        catch (CertificateRequestException e)
        {
            throw new RpcException(new Status(StatusCodeOf(e.Refusal), e.Message));
        }
    }

    /// <summary>
    /// Istio's order: a verified client certificate (on the TLS port) first, so a workload renews with the certificate
    /// it holds, for that identity only; else the bootstrap credential. A certificate that does not verify is no
    /// credential, and the token decides; when that fails too, both reasons are returned.
    /// </summary>
    private async ValueTask<CallerAuthentication> AuthenticateAsync(ServerCallContext context)
    {
        string? certificateFailure = null;
        if (context.GetHttpContext().Connection.ClientCertificate is { } presented)
        {
            var byCertificate = ca.AuthenticateCertificate(presented);
            if (byCertificate.Identity is not null)
            {
                return byCertificate;
            }
            certificateFailure = byCertificate.Failure;
        }
        var byToken = await authenticator.AuthenticateAsync(context.RequestHeaders, context.CancellationToken).ConfigureAwait(false);
        return byToken.Identity is null && certificateFailure is not null
            ? CallerAuthentication.Failed($"{certificateFailure}; and {byToken.Failure}")
            : byToken;
    }

    internal static StatusCode StatusCodeOf(CertificateRequestRefusal refusal) => refusal switch
    {
        CertificateRequestRefusal.IdentityMismatch => StatusCode.PermissionDenied,
        CertificateRequestRefusal.RateLimited => StatusCode.ResourceExhausted,
        CertificateRequestRefusal.SignerExpired => StatusCode.FailedPrecondition,
        _ => StatusCode.InvalidArgument,
    };
}
