namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// A compiled <c>JwtRequirement</c>: Envoy's verifier tree. Every provider here has its keys in memory (local JWKS),
/// so verification is synchronous and a group simply evaluates its children in order, stopping as soon as its
/// answer is known, which is the order and the short-circuit Envoy's asynchronous tree has.
/// </summary>
/// <remarks>Immutable and thread-safe; per-request state is in the <see cref="VerifyContext"/>.</remarks>
internal abstract class JwtVerifier
{
    public abstract JwtStatus Verify(VerifyContext context);
}

/// <summary><c>provider_name</c> or <c>provider_and_audiences</c>: the provider's locations, keys and checks.</summary>
internal sealed class ProviderVerifier(JwtProviderConfig provider, IReadOnlySet<string>? audiences, JwtAuthenticator authenticator) : JwtVerifier
{
    private readonly TokenExtractor _extractor = new([provider]);

    public override JwtStatus Verify(VerifyContext context) =>
        authenticator.Authenticate(context, _extractor, provider, audiences ?? provider.AllowedAudiences, allowFailed: false, allowMissing: false);
}

/// <summary>
/// <c>allow_missing</c> / <c>allow_missing_or_failed</c> on their own: every provider's locations, the provider
/// chosen by the token's issuer. Missing passes; with <c>allow_missing_or_failed</c> a failed token passes too (and
/// publishes nothing).
/// </summary>
internal sealed class AllowMissingVerifier(TokenExtractor allProviders, bool allowFailed, JwtAuthenticator authenticator) : JwtVerifier
{
    public override JwtStatus Verify(VerifyContext context) =>
        authenticator.Authenticate(context, allProviders, provider: null, audiences: null, allowFailed, allowMissing: true);
}

/// <summary>An empty requirement: nothing to verify.</summary>
internal sealed class AllowAllVerifier : JwtVerifier
{
    public static AllowAllVerifier Instance { get; } = new();

    public override JwtStatus Verify(VerifyContext context) => JwtStatus.Ok;
}

/// <summary><c>requires_all</c>: the first failure is the answer.</summary>
internal sealed class AllVerifier(JwtVerifier[] children) : JwtVerifier
{
    public override JwtStatus Verify(VerifyContext context)
    {
        foreach (var child in children)
        {
            var status = child.Verify(context);
            if (status != JwtStatus.Ok)
            {
                return status;
            }
        }
        return JwtStatus.Ok;
    }
}

/// <summary>
/// <c>requires_any</c> as Envoy runs it: the first child that passes is the answer. When none does, the error
/// reported is the most telling one: a real failure (bad signature, expired) over a wrong issuer over a missing
/// token. <c>allow_missing</c> in the list lets the "missing" outcome pass (so a present but invalid token still
/// fails: Istio's RequestAuthentication), <c>allow_missing_or_failed</c> lets every outcome pass.
/// </summary>
internal sealed class AnyVerifier(JwtVerifier[] children, bool allowMissing, bool allowMissingOrFailed) : JwtVerifier
{
    public override JwtStatus Verify(VerifyContext context)
    {
        var final = JwtStatus.JwtMissed;
        foreach (var child in children)
        {
            var status = child.Verify(context);
            if (status == JwtStatus.Ok)
            {
                return JwtStatus.Ok;
            }
            if ((status != JwtStatus.JwtMissed && status != JwtStatus.JwtUnknownIssuer) || final == JwtStatus.JwtMissed)
            {
                final = status;
            }
        }
        if (allowMissingOrFailed || (allowMissing && final == JwtStatus.JwtMissed))
        {
            return JwtStatus.Ok;
        }
        return final;
    }
}
