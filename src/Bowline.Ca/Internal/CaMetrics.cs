using System.Diagnostics.Metrics;

namespace Bowline.Ca.Internal;

/// <summary>
/// The CA's counters, on the <c>Bowline.Ca</c> meter, named after Istio's citadel metrics so dashboards built for
/// istiod read them. <c>citadel_server_rate_limited_count</c> is Bowline's own: Istio's CA has no rate limit.
/// Refusals carry a <c>reason</c> tag (the <see cref="CertificateRequestRefusal"/>).
/// </summary>
internal sealed class CaMetrics : IDisposable
{
    public const string MeterName = "Bowline.Ca";

    private readonly Counter<long> _csrs;
    private readonly Counter<long> _issued;
    private readonly Counter<long> _parseErrors;
    private readonly Counter<long> _idErrors;
    private readonly Counter<long> _authnFailures;
    private readonly Counter<long> _rateLimited;

    public CaMetrics(Func<DateTimeOffset> rootExpiry)
    {
        Meter = new Meter(MeterName);
        _csrs = Meter.CreateCounter<long>("citadel_server_csr_count", description: "Certificate signing requests received.");
        _issued = Meter.CreateCounter<long>("citadel_server_success_cert_issuance_count", description: "Certificates issued.");
        _parseErrors = Meter.CreateCounter<long>("citadel_server_csr_parsing_err_count", description: "CSRs refused because they did not parse or verify, or their key was not accepted.");
        _idErrors = Meter.CreateCounter<long>("citadel_server_id_extraction_err_count", description: "CSRs refused because their SAN was not exactly the caller's SPIFFE ID.");
        _authnFailures = Meter.CreateCounter<long>("citadel_server_authentication_failure_count", description: "Requests refused because the caller's credentials did not authenticate.");
        _rateLimited = Meter.CreateCounter<long>("citadel_server_rate_limited_count", description: "Requests refused because their identity exceeded its rate limit.");
        Meter.CreateObservableGauge("citadel_server_root_cert_expiry_timestamp", () => rootExpiry().ToUnixTimeSeconds(), unit: "s", description: "When the root current leaves chain to expires (Unix time).");
    }

    /// <summary>Owned by one CA instance, so tests observe only their own CA's counts.</summary>
    public Meter Meter { get; }

    public void CsrReceived() => _csrs.Add(1);

    public void Issued() => _issued.Add(1);

    public void AuthenticationFailed() => _authnFailures.Add(1);

    public void Refused(CertificateRequestRefusal refusal)
    {
        var reason = new KeyValuePair<string, object?>("reason", refusal.ToString());
        var counter = refusal switch
        {
            CertificateRequestRefusal.MalformedCsr or CertificateRequestRefusal.UnsupportedKey => _parseErrors,
            CertificateRequestRefusal.InvalidIdentity or CertificateRequestRefusal.IdentityMismatch => _idErrors,
            CertificateRequestRefusal.RateLimited => _rateLimited,
            _ => null,
        };
        counter?.Add(1, reason);
    }

    public void Dispose() => Meter.Dispose();
}
