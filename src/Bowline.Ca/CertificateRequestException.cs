namespace Bowline.Ca;

/// <summary>Why the CA refused a certificate request. Each maps to one gRPC status code.</summary>
public enum CertificateRequestRefusal
{
    /// <summary>The CSR is not a well-formed, correctly signed PKCS#10 request (InvalidArgument).</summary>
    MalformedCsr,

    /// <summary>The CSR's key type or size is not accepted (InvalidArgument).</summary>
    UnsupportedKey,

    /// <summary>The CSR does not carry exactly one SAN that is a SPIFFE URI of the expected shape (InvalidArgument).</summary>
    InvalidIdentity,

    /// <summary>The CSR asks for an identity other than the one the caller proved (PermissionDenied).</summary>
    IdentityMismatch,

    /// <summary>The caller made too many requests too quickly (ResourceExhausted).</summary>
    RateLimited,

    /// <summary>The CA's own signing chain has expired; an operator must act (FailedPrecondition).</summary>
    SignerExpired,
}

/// <summary>A refused certificate request. <see cref="Exception.Message"/> says what was wrong and how to fix it.</summary>
public sealed class CertificateRequestException : Exception
{
    public CertificateRequestException(CertificateRequestRefusal refusal, string message)
        : base(message) => Refusal = refusal;

    public CertificateRequestRefusal Refusal { get; }
}
