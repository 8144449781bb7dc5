using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca.Internal;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bowline.Ca;

/// <summary>
/// The mesh's certificate authority: signs X.509 SVIDs for workloads from their CSRs, keeps the trust bundle, and
/// rotates its self-signed root. Thread-safe; signing reads one immutable snapshot of the signer and bundle and never
/// waits for a rotation.
/// </summary>
public sealed partial class CertificateAuthority : IDisposable
{
    private const string ServerAuthOid = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuthOid = "1.3.6.1.5.5.7.3.2";
    private const string SubjectAltNameOid = "2.5.29.17";
    private static readonly TimeSpan AuthenticationLogInterval = TimeSpan.FromSeconds(5);

    private readonly CaOptions _options;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _admin = new();
    private readonly IdentityRateLimiter _limiter;
    private readonly LeafLedger _ledger = new();
    private volatile State _state;
    private PendingRoot? _pending;
    private ITimer? _retireTimer;
    private long _lastAuthenticationLog = long.MinValue;
    private long _unloggedAuthenticationFailures;

    private CertificateAuthority(CaOptions options, TimeProvider time, ILogger logger, State state)
    {
        _options = options;
        _time = time;
        _logger = logger;
        _state = state;
        _limiter = new IdentityRateLimiter(options.RateLimitBurst, options.RateLimitPerSecond, time);
        Metrics = new CaMetrics(() => new DateTimeOffset(_state.Signer.Root.NotAfter.ToUniversalTime()));
    }

    /// <summary>The trust domain of every identity this CA issues.</summary>
    public string TrustDomain => _options.TrustDomain;

    /// <summary>The roots workloads must trust now. Watch its <see cref="TrustBundle.ChangeToken"/> for rotation.</summary>
    public TrustBundle TrustBundle => _state.Bundle;

    internal CaMetrics Metrics { get; }

    /// <summary>
    /// Loads the CA from <see cref="CaOptions.Directory"/>, or, when the directory holds no CA files, generates a
    /// self-signed root there first. Throws <see cref="InvalidOperationException"/> naming the file and the fix when
    /// the files are incomplete, do not match, or do not chain to a root.
    /// </summary>
    public static CertificateAuthority Open(CaOptions options, TimeProvider time, ILoggerFactory? loggers = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(time);
        Validate(options);
        var logger = (ILogger?)loggers?.CreateLogger("Bowline.Ca") ?? NullLogger.Instance;
        SecureFiles.EnsureDirectory(options.Directory);
        if (CaFiles.IsEmpty(options.Directory))
        {
            var (cert, key) = CaFiles.GenerateRoot(options.TrustDomain, time.GetUtcNow(), options.RootTtl, options.ClockSkewAllowance);
            CaFiles.SaveSigningRoot(options.Directory, cert, key, []);
            Log.RootGenerated(logger, options.Directory);
        }
        var state = State.From(CaFiles.Load(options.Directory, time.GetUtcNow()));
        Log.Opened(logger, state.Signer.Certificate.Subject, state.Signer.IsRoot ? "root" : "intermediate", state.Signer.NotAfter, options.TrustDomain, state.Bundle.Roots.Count, options.Directory);
        var ca = new CertificateAuthority(options, time, logger, state);
        if (CaFiles.LoadPending(options.Directory) is { } pending)
        {
            // The ledger is empty after a restart: wait as long as the longest leaf anyone might hold needs to renew.
            ca.Stage(pending.CertificatePem, pending.KeyPem, time.GetUtcNow() + (options.MaxCertificateTtl * 0.6));
            Log.RotationBegun(logger, ca._pending!.Thumbprint, ca._pending.SwitchAt);
        }
        return ca;
    }

    /// <summary>
    /// Signs a workload certificate for <paramref name="caller"/>, the identity its credentials proved. The CSR must
    /// verify, hold an ECDSA P-256/P-384 or RSA 2048+ key, and ask for exactly one SAN, the URI of
    /// <paramref name="caller"/>'s SPIFFE ID. Returns PEM certificates: the leaf, the intermediates (under an
    /// operator-supplied intermediate), and last the trust bundle, as Istio's CA answers.
    /// </summary>
    /// <param name="requestedTtl">Null or non-positive for <see cref="CaOptions.DefaultCertificateTtl"/>; cut to <see cref="CaOptions.MaxCertificateTtl"/> and to the signing chain's own expiry.</param>
    /// <exception cref="CertificateRequestException">The request was refused; the message says why and how to fix it.</exception>
    public IReadOnlyList<string> Sign(string csrPem, WorkloadIdentity caller, TimeSpan? requestedTtl = null)
    {
        ArgumentNullException.ThrowIfNull(caller);
        // Before any parsing: a looping caller costs one dictionary lookup, not a signature verification.
        if (!_limiter.TryAcquire(caller, out var retryAfter, out var firstRefusal))
        {
            var limited = new CertificateRequestException(CertificateRequestRefusal.RateLimited,
                $"{caller} asked for more than {_options.RateLimitBurst} certificates in a burst (then {_options.RateLimitPerSecond}/s); retry in {retryAfter.TotalSeconds:0}s. A workload renews about twice a day, so a caller that loops is misbehaving");
            Metrics.Refused(limited.Refusal);
            if (firstRefusal)
            {
                Log.Refused(_logger, caller.SpiffeId(TrustDomain), limited.Refusal, limited.Message + " (logged once until it is served again; citadel_server_rate_limited_count counts every refusal)");
            }
            throw limited;
        }
        try
        {
            var csr = CsrInspector.Load(csrPem);
            CsrInspector.CheckKey(csr.PublicKey);
            CsrInspector.CheckIdentity(CsrInspector.SingleUriSan(csr), TrustDomain, caller);
            return Issue(csr.PublicKey, caller, requestedTtl);
        }
        catch (CertificateRequestException e)
        {
            Metrics.Refused(e.Refusal);
            Log.Refused(_logger, caller.SpiffeId(TrustDomain), e.Refusal, e.Message);
            throw;
        }
    }

    /// <summary>
    /// Generates a new self-signed root and signs under it from now on. The bundle holds the new root and every old
    /// one until <see cref="RetireRoot"/>, so leaves of both verify meanwhile. Persisted before it takes effect. An
    /// emergency switch: workloads that have not renewed since do not trust the new leaves yet. The rotation that
    /// drops nothing is <see cref="BeginRootRotation"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">The CA signs under an operator-supplied intermediate: its root is the operator's to rotate.</exception>
    public TrustBundle RotateRoot()
    {
        lock (_admin)
        {
            var current = _state;
            if (_pending is not null)
            {
                throw new InvalidOperationException($"a staged root rotation is under way (leaves switch to root {_pending.Thumbprint} at {_pending.SwitchAt:u}); let it finish");
            }
            if (!current.Signer.IsRoot)
            {
                throw new InvalidOperationException($"the CA signs under the operator-supplied intermediate {current.Signer.Certificate.Subject}; rotate by putting the new intermediate, key and chain in {_options.Directory} (with old and new roots in {CaFiles.RootCert}) and restarting the control plane");
            }
            var (cert, key) = CaFiles.GenerateRoot(TrustDomain, _time.GetUtcNow(), _options.RootTtl, _options.ClockSkewAllowance);
            CaFiles.SaveSigningRoot(_options.Directory, cert, key, current.Bundle.Roots);
            var next = Replace(current);
            Log.Rotated(_logger, current.Signer.Root.Subject, next.Signer.Root.Subject);
            return next.Bundle;
        }
    }

    /// <summary>The staged root's thumbprint while a <see cref="BeginRootRotation"/> waits to sign under it; else null.</summary>
    public string? PendingRootThumbprint => _pending?.Thumbprint;

    /// <summary>
    /// The rotation that drops no connection, in three steps the CA takes by itself: (1) now, a new root joins the
    /// trust bundle while leaves are still signed under the old one; (2) once every leaf issued before is past its
    /// renewal (half its life, and a tenth more for retries: its holder then has the new bundle), leaves are signed
    /// under the new root; (3) once every leaf under the old root is past its renewal in turn, the old root leaves the
    /// bundle. Peers therefore always
    /// trust each other's leaves. Persisted: a restart resumes the rotation.
    /// </summary>
    /// <exception cref="InvalidOperationException">A rotation is already under way, or the CA signs under an operator-supplied intermediate.</exception>
    public TrustBundle BeginRootRotation()
    {
        lock (_admin)
        {
            var current = _state;
            if (_pending is not null)
            {
                throw new InvalidOperationException($"a root rotation is already under way: leaves switch to root {_pending.Thumbprint} at {_pending.SwitchAt:u}");
            }
            if (!current.Signer.IsRoot)
            {
                throw new InvalidOperationException($"the CA signs under the operator-supplied intermediate {current.Signer.Certificate.Subject}; rotate by putting the new intermediate, key and chain in {_options.Directory} (with old and new roots in {CaFiles.RootCert}) and restarting the control plane");
            }
            var (cert, key) = CaFiles.GenerateRoot(TrustDomain, _time.GetUtcNow(), _options.RootTtl, _options.ClockSkewAllowance);
            // The key first, then the bundle: a crash part-way leaves at worst a staged root nobody trusts yet.
            CaFiles.SavePending(_options.Directory, cert, key);
            CaFiles.SaveRoots(_options.Directory, [.. current.Bundle.Roots.Select(r => r.ExportCertificatePem() + "\n"), cert]);
            var next = Replace(current);
            Stage(cert, key, _ledger.AllRenewedBy());
            Log.RotationBegun(_logger, _pending!.Thumbprint, _pending.SwitchAt);
            return next.Bundle;
        }
    }

    /// <summary>Schedules step (2) of a staged rotation: after <paramref name="renewedBy"/> (null: no leaf issued yet) and a margin.</summary>
    private void Stage(string certificatePem, string keyPem, DateTimeOffset? renewedBy)
    {
        var now = _time.GetUtcNow();
        var switchAt = Max(now, renewedBy ?? now);
        using var certificate = X509Certificate2.CreateFromPem(certificatePem);
        _pending = new PendingRoot(certificatePem, keyPem, TrustBundle.Thumbprint(certificate), switchAt,
            _time.CreateTimer(_ => SwitchToPendingRoot(), null, Due(switchAt - now), Timeout.InfiniteTimeSpan));
    }

    /// <summary>Timers take at most ~49 days; a later step wakes up at the cap and waits again.</summary>
    private static TimeSpan Due(TimeSpan wait) => wait < MaxTimerWait ? wait : MaxTimerWait;

    private static readonly TimeSpan MaxTimerWait = TimeSpan.FromDays(30);

    private void SwitchToPendingRoot()
    {
        lock (_admin)
        {
            if (_pending is not { } pending)
            {
                return;
            }
            var early = pending.SwitchAt - _time.GetUtcNow();
            if (early > TimeSpan.Zero)
            {
                pending.Timer.Change(Due(early), Timeout.InfiniteTimeSpan);
                return;
            }
            var current = _state;
            var oldRoot = current.Signer.RootThumbprint;
            try
            {
                CaFiles.SaveSigningRoot(_options.Directory, pending.CertificatePem, pending.KeyPem,
                    current.Bundle.Roots.Where(r => !string.Equals(TrustBundle.Thumbprint(r), pending.Thumbprint, StringComparison.OrdinalIgnoreCase)));
                CaFiles.ClearPending(_options.Directory);
                Replace(current);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException or CryptographicException)
            {
                // Signing goes on under the old root, which everyone trusts; the operator sees why and can retry.
                Log.RotationFailed(_logger, pending.Thumbprint, e.Message);
                return;
            }
            pending.Timer.Dispose();
            _pending = null;
            var now = _time.GetUtcNow();
            var retireAt = Max(now, _ledger.AllRenewedBy(oldRoot) ?? now);
            _retireTimer?.Dispose();
            _retireTimer = _time.CreateTimer(_ => RetireAfterRotation(oldRoot, retireAt), null, Due(retireAt - now), Timeout.InfiniteTimeSpan);
            Log.RotationSwitched(_logger, pending.Thumbprint, retireAt);
        }
    }

    private void RetireAfterRotation(string oldRoot, DateTimeOffset retireAt)
    {
        var early = retireAt - _time.GetUtcNow();
        if (early > TimeSpan.Zero)
        {
            lock (_admin)
            {
                _retireTimer?.Change(Due(early), Timeout.InfiniteTimeSpan);
            }
            return;
        }
        try
        {
            RetireRoot(oldRoot, evenIfLeavesRemain: true);
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException or IOException or UnauthorizedAccessException)
        {
            Log.RotationFailed(_logger, oldRoot, e.Message);
        }
    }

    /// <summary>
    /// Removes a root from the trust bundle (named by <see cref="TrustBundle.Thumbprint"/>), after rotation. Refused
    /// for the root current leaves chain to, and, unless <paramref name="evenIfLeavesRemain"/>, while identities still
    /// hold unexpired leaves under it (see <see cref="IdentitiesWithLeavesUnder"/>): their peers would reject them.
    /// </summary>
    public TrustBundle RetireRoot(string rootThumbprint, bool evenIfLeavesRemain = false)
    {
        ArgumentNullException.ThrowIfNull(rootThumbprint);
        lock (_admin)
        {
            var current = _state;
            if (!current.Bundle.Contains(rootThumbprint))
            {
                throw new ArgumentException($"no root with SHA-256 thumbprint {rootThumbprint} is trusted; trusted: {current.Bundle}", nameof(rootThumbprint));
            }
            if (string.Equals(rootThumbprint, current.Signer.RootThumbprint, StringComparison.OrdinalIgnoreCase))
            {
                throw new InvalidOperationException($"{current.Signer.Root.Subject} is the root current leaves chain to; rotate first, then retire the old root");
            }
            var holders = IdentitiesWithLeavesUnder(rootThumbprint);
            if (holders.Count > 0 && !evenIfLeavesRemain)
            {
                throw new InvalidOperationException($"{holders.Count} identities still hold unexpired leaves under that root ({string.Join(", ", holders.Take(10))}); wait until they renew or their leaves expire, or retire it anyway");
            }
            var retired = current.Bundle.Roots.First(r => string.Equals(TrustBundle.Thumbprint(r), rootThumbprint, StringComparison.OrdinalIgnoreCase));
            CaFiles.SaveRoots(_options.Directory, current.Bundle.Roots.Where(r => r != retired).Select(r => r.ExportCertificatePem() + "\n"));
            var next = Replace(current);
            _ledger.Forget(rootThumbprint);
            Log.Retired(_logger, retired.Subject, holders.Count);
            return next.Bundle;
        }
    }

    /// <summary>Identities that were issued a leaf under the given root which has not expired yet. Tracked in memory: leaves issued before this process started are not known.</summary>
    public IReadOnlyList<WorkloadIdentity> IdentitiesWithLeavesUnder(string rootThumbprint)
    {
        ArgumentNullException.ThrowIfNull(rootThumbprint);
        return _ledger.Holders(rootThumbprint, _time.GetUtcNow());
    }

    public void Dispose()
    {
        lock (_admin)
        {
            _pending?.Timer.Dispose();
            _retireTimer?.Dispose();
        }
        Metrics.Dispose();
    }

    /// <summary>
    /// Counts a caller that failed authentication, and logs at most one line every 5 s (with how many were not
    /// logged): anyone who can reach the port can fail, and must not be able to flood the log.
    /// </summary>
    internal void AuthenticationFailed(string peer, string reason)
    {
        Metrics.AuthenticationFailed();
        var now = _time.GetTimestamp();
        var last = Interlocked.Read(ref _lastAuthenticationLog);
        if (last != long.MinValue && _time.GetElapsedTime(last, now) < AuthenticationLogInterval)
        {
            Interlocked.Increment(ref _unloggedAuthenticationFailures);
            return;
        }
        if (Interlocked.CompareExchange(ref _lastAuthenticationLog, now, last) == last)
        {
            Log.Unauthenticated(_logger, peer, reason, Interlocked.Exchange(ref _unloggedAuthenticationFailures, 0));
        }
        else
        {
            Interlocked.Increment(ref _unloggedAuthenticationFailures);
        }
    }

    private IReadOnlyList<string> Issue(PublicKey key, WorkloadIdentity caller, TimeSpan? requestedTtl)
    {
        var state = _state;
        var signer = state.Signer;
        var now = _time.GetUtcNow();
        var ttl = requestedTtl is { } requested && requested > TimeSpan.Zero
            ? (requested < _options.MaxCertificateTtl ? requested : _options.MaxCertificateTtl)
            : _options.DefaultCertificateTtl;
        // X.509 times have whole seconds; rounding here keeps what we record equal to what the certificate says.
        var notBefore = Max(Truncate(now - _options.ClockSkewAllowance), signer.NotBefore);
        var notAfter = Min(Truncate(now + ttl), signer.NotAfter);
        if (notAfter <= now)
        {
            Log.SignerExpired(_logger, signer.Certificate.Subject, signer.NotAfter);
            throw new CertificateRequestException(CertificateRequestRefusal.SignerExpired, $"the CA's signing chain expired at {signer.NotAfter:u}; the operator must rotate the root or supply a new intermediate in {_options.Directory}");
        }

        var spiffeId = caller.SpiffeId(TrustDomain);
        // Built from the CSR's public key alone: nothing else the CSR asked for reaches the leaf.
        var request = new CertificateRequest(EmptyName(), key, signer.Hash, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: false, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyEncipherment, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new Oid(ServerAuthOid), new Oid(ClientAuthOid)], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(key, critical: false));
        request.CertificateExtensions.Add(signer.AuthorityKeyIdentifier);
        // The subject is empty (as in Istio's leaves), so RFC 5280 makes the SAN critical.
        request.CertificateExtensions.Add(new X509Extension(SubjectAltNameOid, UriSan(spiffeId), critical: true));

        using var leaf = request.Create(signer.Certificate.SubjectName, signer.Generator, notBefore, notAfter, Serial());
        _ledger.Record(caller, signer.RootThumbprint, notBefore, notAfter);
        Metrics.Issued();
        Log.Issued(_logger, spiffeId, leaf.SerialNumber, notAfter);
        return [leaf.ExportCertificatePem() + "\n", .. signer.IntermediatePems.Select(p => p + "\n"), state.Bundle.Pem];
    }

    /// <summary>Re-reads the files just written, so what signs is exactly what a restart would load.</summary>
    private State Replace(State current)
    {
        var next = State.From(CaFiles.Load(_options.Directory, _time.GetUtcNow()));
        _state = next;
        current.Bundle.Supersede();
        return next;
    }

    /// <summary>128 random bits as a positive integer (RFC 5280 allows 20 octets; CA/B asks for 64 bits of entropy).</summary>
    private static byte[] Serial()
    {
        var serial = new byte[17];
        RandomNumberGenerator.Fill(serial.AsSpan(1));
        // DER integers are minimal: the leading zero stays only when it keeps the value positive.
        return serial[1] >= 0x80 ? serial : serial[1..];
    }

    private static X500DistinguishedName EmptyName() => new([0x30, 0x00]);

    private static byte[] UriSan(string uri)
    {
        var writer = new AsnWriter(AsnEncodingRules.DER);
        using (writer.PushSequence())
        {
            writer.WriteCharacterString(UniversalTagNumber.IA5String, uri, new Asn1Tag(TagClass.ContextSpecific, 6));
        }
        return writer.Encode();
    }

    private static DateTimeOffset Truncate(DateTimeOffset time) => new(time.UtcTicks - (time.UtcTicks % TimeSpan.TicksPerSecond), TimeSpan.Zero);

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    private static DateTimeOffset Min(DateTimeOffset a, DateTimeOffset b) => a < b ? a : b;

    private static void Validate(CaOptions options)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(options.Directory, nameof(options.Directory));
        if (options.TrustDomain.Length is 0 or > 255 || !options.TrustDomain.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c is '.' or '-' or '_'))
        {
            throw new ArgumentException($"trust domain '{options.TrustDomain}' is not a SPIFFE trust domain (lower-case letters, digits, '.', '-', '_')", nameof(options));
        }
        if (options.DefaultCertificateTtl <= TimeSpan.Zero || options.MaxCertificateTtl < options.DefaultCertificateTtl)
        {
            throw new ArgumentException($"certificate TTLs must satisfy 0 < default ({options.DefaultCertificateTtl}) <= maximum ({options.MaxCertificateTtl})", nameof(options));
        }
        if (options.RootTtl <= options.MaxCertificateTtl || options.ClockSkewAllowance < TimeSpan.Zero)
        {
            throw new ArgumentException($"the root TTL ({options.RootTtl}) must exceed the maximum certificate TTL ({options.MaxCertificateTtl}), and the clock skew allowance must not be negative", nameof(options));
        }
        if (options.RateLimitBurst < 1 || !(options.RateLimitPerSecond > 0))
        {
            throw new ArgumentException($"the rate limit needs a burst of at least 1 (got {options.RateLimitBurst}) and a positive rate (got {options.RateLimitPerSecond}/s)", nameof(options));
        }
    }

    /// <summary>A staged rotation's root, and when leaves switch to it.</summary>
    private sealed record PendingRoot(string CertificatePem, string KeyPem, string Thumbprint, DateTimeOffset SwitchAt, ITimer Timer);

    /// <summary>One consistent view: the signer and the bundle change together.</summary>
    private sealed record State(Signer Signer, TrustBundle Bundle)
    {
        public static State From(CaFiles.Contents contents) => new(new Signer(contents.Signing, contents.Chain), new TrustBundle(contents.Roots));
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: no CA files in {Directory}; generated a self-signed root. Every workload must trust it: distribute root-cert.pem, or supply your own root or intermediate in that directory")]
        public static partial void RootGenerated(ILogger logger, string directory);

        [LoggerMessage(Level = LogLevel.Information, Message = "ca: signing as {Subject} ({Kind}, valid until {NotAfter:u}) for trust domain {TrustDomain}; {Roots} trusted root(s); files in {Directory}")]
        public static partial void Opened(ILogger logger, string subject, string kind, DateTimeOffset notAfter, string trustDomain, int roots, string directory);

        [LoggerMessage(Level = LogLevel.Debug, Message = "ca: issued {SpiffeId}, serial {Serial}, valid until {NotAfter:u}")]
        public static partial void Issued(ILogger logger, string spiffeId, string serial, DateTimeOffset notAfter);

        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: refused a certificate for {SpiffeId} ({Refusal}): {Reason}")]
        public static partial void Refused(ILogger logger, string spiffeId, CertificateRequestRefusal refusal, string reason);

        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: refused an unauthenticated certificate request from {Peer}: {Reason} ({Unlogged} more since the last such line; citadel_server_authentication_failure_count counts them all)")]
        public static partial void Unauthenticated(ILogger logger, string peer, string reason, long unlogged);

        [LoggerMessage(Level = LogLevel.Information, Message = "ca: issued the control plane's serving certificate for {Names}, serial {Serial}, valid until {NotAfter:u}")]
        public static partial void ServingIssued(ILogger logger, string names, string serial, DateTimeOffset notAfter);

        [LoggerMessage(Level = LogLevel.Error, Message = "ca: cannot sign: the signing chain of {Subject} expired at {NotAfter:u}. Rotate the root or supply a new intermediate")]
        public static partial void SignerExpired(ILogger logger, string subject, DateTimeOffset notAfter);

        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: rotated the root from {Old} to {New}; both are trusted until the old one is retired")]
        public static partial void Rotated(ILogger logger, string old, string @new);

        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: root rotation begun: root {Root} is trusted from now on; leaves are signed under it from {SwitchAt:u}, once every workload has renewed and holds the new trust bundle")]
        public static partial void RotationBegun(ILogger logger, string root, DateTimeOffset switchAt);

        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: root rotation: leaves are now signed under root {Root}; the old root leaves the trust bundle at {RetireAt:u}, once every workload holds a leaf under the new one")]
        public static partial void RotationSwitched(ILogger logger, string root, DateTimeOffset retireAt);

        [LoggerMessage(Level = LogLevel.Error, Message = "ca: root rotation step for root {Root} failed: {Reason}; the CA goes on signing under its current root")]
        public static partial void RotationFailed(ILogger logger, string root, string reason);

        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: retired root {Subject} ({Holders} identities still held leaves under it)")]
        public static partial void Retired(ILogger logger, string subject, int holders);
    }
}
