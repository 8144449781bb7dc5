namespace Bowline.Proxy.Filters.Http.JwtAuthn;

/// <summary>
/// The outcome of verifying a request's JWTs, named after the statuses of Envoy's JWT library so that operators see
/// the same 401 bodies and response code details as with Envoy (<see cref="JwtStatusText.Message"/>).
/// </summary>
internal enum JwtStatus
{
    Ok,
    JwtMissed,
    JwtNotYetValid,
    JwtExpired,
    JwtBadFormat,
    JwtHeaderParseErrorBadBase64,
    JwtHeaderParseErrorBadJson,
    JwtHeaderBadAlg,
    JwtHeaderNotImplementedAlg,
    JwtHeaderBadKid,
    JwtPayloadParseErrorBadBase64,
    JwtPayloadParseErrorBadJson,
    JwtPayloadParseErrorIssNotString,
    JwtPayloadParseErrorSubNotString,
    JwtPayloadParseErrorIatNotInteger,
    JwtPayloadParseErrorNbfNotInteger,
    JwtPayloadParseErrorExpNotInteger,
    JwtPayloadParseErrorJtiNotString,
    JwtPayloadParseErrorAudNotString,
    JwtSignatureParseErrorBadBase64,
    JwtUnknownIssuer,
    JwtAudienceNotAllowed,
    JwtVerificationFail,
    JwtMultipleTokens,
    JwksNoValidKeys,
    JwksKidAlgMismatch,
}

internal static class JwtStatusText
{
    /// <summary>The text Envoy puts in the 401 body (and, spaces as <c>_</c>, in the response code details).</summary>
    public static string Message(this JwtStatus status) => status switch
    {
        JwtStatus.Ok => "OK",
        JwtStatus.JwtMissed => "Jwt is missing",
        JwtStatus.JwtNotYetValid => "Jwt not yet valid",
        JwtStatus.JwtExpired => "Jwt is expired",
        JwtStatus.JwtBadFormat => "Jwt is not in the form of Header.Payload.Signature with two dots and 3 sections",
        JwtStatus.JwtHeaderParseErrorBadBase64 => "Jwt header is an invalid Base64url encoded",
        JwtStatus.JwtHeaderParseErrorBadJson => "Jwt header is an invalid JSON",
        JwtStatus.JwtHeaderBadAlg => "Jwt header [alg] field is required and must be a string",
        JwtStatus.JwtHeaderNotImplementedAlg => "Jwt header [alg] is not supported",
        JwtStatus.JwtHeaderBadKid => "Jwt header [kid] field is not a string",
        JwtStatus.JwtPayloadParseErrorBadBase64 => "Jwt payload is an invalid Base64url encoded",
        JwtStatus.JwtPayloadParseErrorBadJson => "Jwt payload is an invalid JSON",
        JwtStatus.JwtPayloadParseErrorIssNotString => "Jwt payload [iss] field is not a string",
        JwtStatus.JwtPayloadParseErrorSubNotString => "Jwt payload [sub] field is not a string",
        JwtStatus.JwtPayloadParseErrorIatNotInteger => "Jwt payload [iat] field is not an integer",
        JwtStatus.JwtPayloadParseErrorNbfNotInteger => "Jwt payload [nbf] field is not an integer",
        JwtStatus.JwtPayloadParseErrorExpNotInteger => "Jwt payload [exp] field is not an integer",
        JwtStatus.JwtPayloadParseErrorJtiNotString => "Jwt payload [jti] field is not a string",
        JwtStatus.JwtPayloadParseErrorAudNotString => "Jwt payload [aud] field is not a string or string list",
        JwtStatus.JwtSignatureParseErrorBadBase64 => "Jwt signature is an invalid Base64url encoded",
        JwtStatus.JwtUnknownIssuer => "Jwt issuer is not configured",
        JwtStatus.JwtAudienceNotAllowed => "Audiences in Jwt are not allowed",
        JwtStatus.JwtVerificationFail => "Jwt verification fails",
        JwtStatus.JwtMultipleTokens => "Found multiple Jwt tokens",
        JwtStatus.JwksNoValidKeys => "Jwks doesn't have any valid public key",
        JwtStatus.JwksKidAlgMismatch => "Jwks doesn't have key to match kid or alg from Jwt",
        _ => throw new ArgumentOutOfRangeException(nameof(status), status, null),
    };
}
