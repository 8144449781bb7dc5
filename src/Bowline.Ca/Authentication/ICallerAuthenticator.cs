using Grpc.Core;

namespace Bowline.Ca.Authentication;

/// <summary>
/// Turns what a caller sent with its certificate request into the identity it proved. The CA signs only for that
/// identity, so this is the whole of the CA's trust in a caller.
/// </summary>
/// <remarks>
/// Implementations must be thread-safe: calls arrive concurrently. The embedded default is
/// <see cref="BootstrapTokenStore"/> (tokens handed out by <c>bowline up</c>). On Kubernetes a service-account token
/// authenticator takes its place: it reads the same <c>authorization: Bearer</c> header, posts the projected token to
/// the API server as a TokenReview (audience <c>istio-ca</c>, as Istio does), and maps the reviewed user
/// <c>system:serviceaccount:&lt;ns&gt;:&lt;sa&gt;</c> to a <see cref="WorkloadIdentity"/>. Nothing else in the CA changes.
/// </remarks>
public interface ICallerAuthenticator
{
    /// <summary>Authenticates one call from its request headers (gRPC metadata).</summary>
    ValueTask<CallerAuthentication> AuthenticateAsync(Metadata requestHeaders, CancellationToken cancellationToken);
}

/// <summary>The outcome of <see cref="ICallerAuthenticator.AuthenticateAsync"/>: an identity, or why there is none.</summary>
public sealed record CallerAuthentication
{
    private CallerAuthentication(WorkloadIdentity? identity, string? failure) => (Identity, Failure) = (identity, failure);

    /// <summary>The proven identity; null when authentication failed.</summary>
    public WorkloadIdentity? Identity { get; }

    /// <summary>What was wrong with the credentials and how to fix it; null on success. Sent back to the caller, so it must not echo secrets.</summary>
    public string? Failure { get; }

    public static CallerAuthentication Succeeded(WorkloadIdentity identity) => new(identity ?? throw new ArgumentNullException(nameof(identity)), null);

    public static CallerAuthentication Failed(string failure) => new(null, failure ?? throw new ArgumentNullException(nameof(failure)));
}
