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
        var authentication = await authenticator.AuthenticateAsync(context.RequestHeaders, context.CancellationToken).ConfigureAwait(false);
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

    internal static StatusCode StatusCodeOf(CertificateRequestRefusal refusal) => refusal switch
    {
        CertificateRequestRefusal.IdentityMismatch => StatusCode.PermissionDenied,
        CertificateRequestRefusal.RateLimited => StatusCode.ResourceExhausted,
        CertificateRequestRefusal.SignerExpired => StatusCode.FailedPrecondition,
        _ => StatusCode.InvalidArgument,
    };
}
