using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca.Grpc.V1;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tls;
using Grpc.Core;
using Grpc.Net.Client;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Identity;

/// <summary>
/// The proxy's identity agent (pilot-agent's SDS half, in process): generates an ECDSA P-256 key that never leaves
/// the proxy, sends a CSR for <c>spiffe://&lt;trust-domain&gt;/ns/&lt;ns&gt;/sa/&lt;sa&gt;</c> to the CA with the
/// workload's bootstrap token, and publishes the certificate as the SDS secret <c>default</c> and the trust bundle
/// as <c>ROOTCA</c>. It renews at half the certificate's life with a fresh key; a failed renewal retries with
/// backoff while the current certificate stays in use, and is logged and counted. Handshakes read the secret store,
/// so a renewal drops no connection.
/// </summary>
internal sealed partial class WorkloadAgent : IAsyncDisposable
{
    public const string CertificateSecretName = "default";
    public const string TrustBundleSecretName = "ROOTCA";

    private readonly ProxyOptions _options;
    private readonly SecretStore _secrets;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger<WorkloadAgent> _logger;
    private readonly Stat _issued;
    private readonly Stat _failures;
    private readonly Stat _expirySeconds;
    private readonly CancellationTokenSource _stopping = new();
    private readonly ControlPlaneTls? _tls;
    private GrpcChannel? _channel;
    private Task? _loop;

    public WorkloadAgent(ProxyOptions options, SecretStore secrets, ProxyStats stats, TimeProvider time, Random random, ILogger<WorkloadAgent> logger)
    {
        _tls = ControlPlaneTls.For(options, secrets, stats, time, logger);
        _options = options;
        _secrets = secrets;
        _time = time;
        _random = random;
        _logger = logger;
        _issued = stats.Get("bowline.agent.certificates_issued");
        _failures = stats.Get("bowline.agent.certificate_request_failures");
        _expirySeconds = stats.Get("bowline.agent.certificate_expiry_seconds");
        Identity = new SpiffeId(options.TrustDomain, options.Namespace, options.ServiceAccount);
    }

    public SpiffeId Identity { get; }

    /// <summary>Whether the proxy has a bootstrap credential to ask for a certificate with.</summary>
    public bool Enabled => _options.CaToken is not null;

    /// <summary>Starts the renewal loop; completes when the first certificate is in the store or <paramref name="cancellationToken"/> fires.</summary>
    public async Task StartAsync(CancellationToken cancellationToken)
    {
        if (!Enabled || _loop is not null)
        {
            return;
        }
        _channel = CreateChannel();
        _loop = RunAsync(_stopping.Token);
        try
        {
            await WaitForCertificateAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            // The loop keeps trying; TLS chains refuse handshakes (logged, counted) until the certificate arrives.
        }
    }

    /// <summary>
    /// Plaintext to the CA on 15010, or TLS on 15012 verified against the mesh root. Over TLS the current workload
    /// certificate is presented too, so once the proxy holds one the CA renews it on that credential (Istio's
    /// renewal model) and the bootstrap token only matters for the first certificate.
    /// </summary>
    private GrpcChannel CreateChannel()
    {
        var address = _options.CaAddress ?? _options.XdsAddress;
        if (_tls is null)
        {
            return GrpcChannel.ForAddress(address);
        }
        var handler = new SocketsHttpHandler { UseProxy = false, ConnectTimeout = TimeSpan.FromSeconds(5) };
        _tls.Apply(handler);
        return GrpcChannel.ForAddress(address, new GrpcChannelOptions { HttpHandler = handler });
    }

    private Task WaitForCertificateAsync(CancellationToken cancellationToken) =>
        _secrets.WaitUntilAsync(s => s.Certificate(CertificateSecretName) is not null && s.TrustBundle(TrustBundleSecretName) is not null, cancellationToken);

    private async Task RunAsync(CancellationToken cancellationToken)
    {
        var backoff = _options.InitialBackoff;
        while (!cancellationToken.IsCancellationRequested)
        {
            TimeSpan wait;
            try
            {
                var granted = await RequestAsync(cancellationToken).ConfigureAwait(false);
                backoff = _options.InitialBackoff;
                // Istio's agent renews at half of the certificate's life (SECRET_GRACE_PERIOD_RATIO 0.5).
                var renewAt = granted.NotBefore + (granted.NotAfter - granted.NotBefore) / 2;
                wait = renewAt - _time.GetUtcNow();
                wait = wait > TimeSpan.FromSeconds(1) ? wait : TimeSpan.FromSeconds(1);
            }
            catch (Exception e) when (e is RpcException or CryptographicException or InvalidOperationException or HttpRequestException && !cancellationToken.IsCancellationRequested)
            {
                _failures.Increment();
                LogRequestFailed(_logger, Identity.Uri, e is RpcException rpc ? $"{rpc.StatusCode}: {rpc.Status.Detail}" : e.Message, backoff.TotalSeconds);
                wait = TimeSpan.FromTicks((long)(backoff.Ticks * (0.5 + _random.NextDouble() / 2)));
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                _failures.Increment();
                LogRequestFailed(_logger, Identity.Uri, "the CA did not answer within 30 s", backoff.TotalSeconds);
                wait = backoff;
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, _options.MaxBackoff.Ticks));
            }
            try
            {
                await Task.Delay(wait, _time, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>One CSR round trip; publishes the result and returns the leaf.</summary>
    private async Task<(DateTimeOffset NotBefore, DateTimeOffset NotAfter)> RequestAsync(CancellationToken cancellationToken)
    {
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName(""), key, HashAlgorithmName.SHA256);
        var san = new SubjectAlternativeNameBuilder();
        san.AddUri(new Uri(Identity.Uri));
        request.CertificateExtensions.Add(san.Build(critical: true));
        var client = new IstioCertificateService.IstioCertificateServiceClient(_channel!);
        var headers = new Metadata { { "authorization", $"Bearer {_options.CaToken}" } };
        // A real-time bound on the call: the CA is a network peer, whatever clock the proxy's logic runs on.
        using var callTimeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        callTimeout.CancelAfter(TimeSpan.FromSeconds(30));
        var response = await client.CreateCertificateAsync(new IstioCertificateRequest
        {
            Csr = request.CreateSigningRequestPem(),
            ValidityDuration = (long)_options.CertificateTtl.TotalSeconds,
        }, headers, cancellationToken: callTimeout.Token).ConfigureAwait(false);
        if (response.CertChain.Count < 2)
        {
            throw new InvalidOperationException($"the CA answered {response.CertChain.Count} certificate(s); expected the leaf, any intermediates and the roots");
        }
        using var signed = X509Certificate2.CreateFromPem(response.CertChain[0]);
        var leaf = signed.CopyWithPrivateKey(key);
        if (!SpiffeId.SubjectAltNames(leaf).Uris.SequenceEqual([Identity.Uri]))
        {
            throw new InvalidOperationException($"the CA issued a certificate for {string.Join(", ", SpiffeId.SubjectAltNames(leaf).Uris)}, not {Identity.Uri}");
        }
        var intermediates = new X509Certificate2Collection();
        foreach (var pem in response.CertChain.Skip(1).SkipLast(1))
        {
            intermediates.ImportFromPem(pem);
        }
        var roots = new X509Certificate2Collection();
        roots.ImportFromPem(response.CertChain[^1]);
        _secrets.SetTrustBundle(TrustBundleSecretName, roots);
        _secrets.SetCertificate(CertificateSecretName, new CertificateSecret(leaf, intermediates));
        _issued.Increment();
        _expirySeconds.Set(new DateTimeOffset(leaf.NotAfter.ToUniversalTime()).ToUnixTimeSeconds());
        LogIssued(_logger, Identity.Uri, leaf.SerialNumber, leaf.NotAfter.ToUniversalTime());
        return (new DateTimeOffset(leaf.NotBefore.ToUniversalTime()), new DateTimeOffset(leaf.NotAfter.ToUniversalTime()));
    }

    /// <summary>Stops renewing; idempotent (the host stops the agent, then its container disposes it).</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1)
        {
            return;
        }
        await _stopping.CancelAsync().ConfigureAwait(false);
        if (_loop is not null)
        {
            await _loop.ConfigureAwait(false);
        }
        _channel?.Dispose();
        _stopping.Dispose();
    }

    private int _disposed;

    [LoggerMessage(Level = LogLevel.Information, Message = "agent: certificate for {Identity} issued, serial {Serial}, valid until {NotAfter:o}")]
    private static partial void LogIssued(ILogger logger, string identity, string serial, DateTime notAfter);

    [LoggerMessage(Level = LogLevel.Warning, Message = "agent: certificate request for {Identity} failed ({Reason}); the current certificate, if any, stays in use; retrying in about {Seconds} s")]
    private static partial void LogRequestFailed(ILogger logger, string identity, string reason, double seconds);
}
