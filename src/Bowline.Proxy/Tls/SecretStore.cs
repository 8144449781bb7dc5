using System.Security.Cryptography.X509Certificates;
using System.Net.Security;

namespace Bowline.Proxy.Tls;

/// <summary>A certificate with its private key and the chain to present after it (an SDS <c>tls_certificate</c>).</summary>
internal sealed class CertificateSecret
{
    public CertificateSecret(X509Certificate2 leaf, X509Certificate2Collection chain)
    {
        if (!leaf.HasPrivateKey)
        {
            throw new ArgumentException($"certificate {leaf.Subject} has no private key", nameof(leaf));
        }
        Leaf = leaf;
        Chain = chain;
        // Built once per secret: the handshake then sends the chain without rebuilding it.
        Context = SslStreamCertificateContext.Create(leaf, chain, offline: true);
    }

    public X509Certificate2 Leaf { get; }

    public X509Certificate2Collection Chain { get; }

    public SslStreamCertificateContext Context { get; }
}

/// <summary>
/// Envoy's SDS secrets by name: workload certificates (<c>default</c>) and trust bundles (<c>ROOTCA</c>) from the
/// proxy's own agent, credentials (<c>kubernetes://name</c>) from the control plane. Compiled TLS contexts hold names,
/// not certificates, and read the current secret at each handshake: a rotated certificate is used by the next
/// connection, and no existing connection is dropped.
/// </summary>
/// <remarks>Thread-safe: written by the agent or the xDS loop, read by every handshake.</remarks>
internal sealed class SecretStore
{
    private readonly Lock _lock = new();
    private Dictionary<string, CertificateSecret> _certificates = new(StringComparer.Ordinal);
    private Dictionary<string, X509Certificate2Collection> _bundles = new(StringComparer.Ordinal);
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public CertificateSecret? Certificate(string name) => Volatile.Read(ref _certificates).GetValueOrDefault(name);

    public X509Certificate2Collection? TrustBundle(string name) => Volatile.Read(ref _bundles).GetValueOrDefault(name);

    public IReadOnlyDictionary<string, CertificateSecret> Certificates => Volatile.Read(ref _certificates);

    public void SetCertificate(string name, CertificateSecret secret)
    {
        lock (_lock)
        {
            Volatile.Write(ref _certificates, new Dictionary<string, CertificateSecret>(_certificates, StringComparer.Ordinal) { [name] = secret });
        }
        Changed();
    }

    public void SetTrustBundle(string name, X509Certificate2Collection roots)
    {
        lock (_lock)
        {
            Volatile.Write(ref _bundles, new Dictionary<string, X509Certificate2Collection>(_bundles, StringComparer.Ordinal) { [name] = roots });
        }
        Changed();
    }

    /// <summary>
    /// Sets the secrets of one SDS response at once, so a handshake sees all of them or none: a certificate and its CA
    /// bundle (<c>kubernetes://x</c>, <c>kubernetes://x-cacert</c>) never come from two different versions.
    /// </summary>
    public void Set(IReadOnlyCollection<CompiledSecret> secrets)
    {
        lock (_lock)
        {
            var certificates = new Dictionary<string, CertificateSecret>(_certificates, StringComparer.Ordinal);
            var bundles = new Dictionary<string, X509Certificate2Collection>(_bundles, StringComparer.Ordinal);
            foreach (var secret in secrets)
            {
                if (secret.Certificate is { } certificate)
                {
                    certificates[secret.Name] = certificate;
                }
                if (secret.Bundle is { } bundle)
                {
                    bundles[secret.Name] = bundle;
                }
            }
            Volatile.Write(ref _certificates, certificates);
            Volatile.Write(ref _bundles, bundles);
        }
        Changed();
    }

    /// <summary>Forgets secrets no listener or cluster names any more; handshakes already under way keep what they read.</summary>
    public void Remove(IReadOnlyCollection<string> names)
    {
        if (names.Count == 0)
        {
            return;
        }
        lock (_lock)
        {
            Volatile.Write(ref _certificates, _certificates.Where(kv => !names.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
            Volatile.Write(ref _bundles, _bundles.Where(kv => !names.Contains(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value, StringComparer.Ordinal));
        }
        Changed();
    }

    /// <summary>Completes when <paramref name="condition"/> holds, checked now and after every change (warming, tests).</summary>
    public async Task WaitUntilAsync(Func<SecretStore, bool> condition, CancellationToken cancellationToken)
    {
        while (true)
        {
            var changed = Volatile.Read(ref _changed).Task;
            if (condition(this))
            {
                return;
            }
            await changed.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    private void Changed() => Interlocked.Exchange(ref _changed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
