namespace Bowline.Ca;

/// <summary>Settings of the certificate authority. Defaults follow Istio's (24 h workload certificates, 90 day maximum, 10 year self-signed root).</summary>
public sealed record CaOptions
{
    /// <summary>
    /// Where the CA keeps its files, in Istio's plugin-CA layout: <c>ca-cert.pem</c> (the signing certificate),
    /// <c>ca-key.pem</c> (its key), <c>cert-chain.pem</c> (the signing certificate's chain up to the root) and
    /// <c>root-cert.pem</c> (every trusted root). Empty at first start: a root is generated and written here. An
    /// operator may put their own root or intermediate here instead.
    /// </summary>
    public required string Directory { get; init; }

    /// <summary>The SPIFFE trust domain every issued identity belongs to (<c>spiffe://&lt;trust-domain&gt;/ns/.../sa/...</c>).</summary>
    public string TrustDomain { get; init; } = "cluster.local";

    /// <summary>Lifetime of a workload certificate whose request names none (<c>validity_duration</c> 0). Istio's default: 24 h.</summary>
    public TimeSpan DefaultCertificateTtl { get; init; } = TimeSpan.FromHours(24);

    /// <summary>Longer requested lifetimes are cut to this. Istio's <c>MAX_WORKLOAD_CERT_TTL</c> default: 90 days.</summary>
    public TimeSpan MaxCertificateTtl { get; init; } = TimeSpan.FromDays(90);

    /// <summary>How far before "now" a certificate's notBefore is put, so peers whose clocks lag a little accept it at once.</summary>
    public TimeSpan ClockSkewAllowance { get; init; } = TimeSpan.FromMinutes(1);

    /// <summary>Lifetime of a root this CA generates (at first start or on rotation). Istio's self-signed root: 10 years.</summary>
    public TimeSpan RootTtl { get; init; } = TimeSpan.FromDays(3650);

    /// <summary>Certificate requests one identity may make at once before it is rate limited (the token bucket's size).</summary>
    public int RateLimitBurst { get; init; } = 10;

    /// <summary>
    /// Requests per second one identity earns back (the bucket's refill rate). A workload renews about twice a day, so
    /// the default (one every 10 s) only bites a caller that loops.
    /// </summary>
    public double RateLimitPerSecond { get; init; } = 0.1;
}
