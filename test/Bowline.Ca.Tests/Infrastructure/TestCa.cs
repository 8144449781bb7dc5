using System.Formats.Asn1;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Ca.Tests.Infrastructure;

/// <summary>A CA on a fresh temporary directory and a paused clock, and the helpers its tests share.</summary>
internal sealed class TestCa : IDisposable
{
    public static readonly DateTimeOffset Start = new(2026, 3, 1, 12, 0, 0, TimeSpan.Zero);

    public static readonly WorkloadIdentity Reviews = new("default", "bookinfo-reviews");

    public static readonly WorkloadIdentity Ratings = new("default", "bookinfo-ratings");

    public TestCa(Func<CaOptions, CaOptions>? configure = null, TemporaryDirectory? directory = null)
    {
        Directory = directory ?? new TemporaryDirectory();
        Options = configure?.Invoke(new CaOptions { Directory = Directory.Path }) ?? new CaOptions { Directory = Directory.Path };
        Ca = CertificateAuthority.Open(Options, Time);
    }

    public FakeTimeProvider Time { get; } = new(Start);

    public TemporaryDirectory Directory { get; }

    public CaOptions Options { get; }

    public CertificateAuthority Ca { get; }

    public string SpiffeId(WorkloadIdentity identity) => identity.SpiffeId(Options.TrustDomain);

    public void Dispose()
    {
        Ca.Dispose();
        Directory.Dispose();
    }

    /// <summary>A CSR for a new P-256 key with the given URI SANs.</summary>
    public static string Csr(params string[] uris) => Csr(ECDsa.Create(ECCurve.NamedCurves.nistP256), b => Array.ForEach(uris, u => b.AddUri(new Uri(u))));

    public static string Csr(AsymmetricAlgorithm key, Action<SubjectAlternativeNameBuilder>? sans, Action<CertificateRequest>? more = null)
    {
        using (key)
        {
            var request = key switch
            {
                ECDsa ec => new CertificateRequest("CN=asked-for-by-the-workload", ec, HashAlgorithmName.SHA256),
                RSA rsa => new CertificateRequest("CN=asked-for-by-the-workload", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1),
                _ => throw new ArgumentException("ECDSA or RSA", nameof(key)),
            };
            if (sans is not null)
            {
                var builder = new SubjectAlternativeNameBuilder();
                sans(builder);
                request.CertificateExtensions.Add(builder.Build());
            }
            more?.Invoke(request);
            return request.CreateSigningRequestPem();
        }
    }

    /// <summary>A file's permission bits; the CA's tests run where those exist.</summary>
    public static UnixFileMode ModeOf(string path) =>
        OperatingSystem.IsWindows() ? throw new PlatformNotSupportedException("Unix file modes") : File.GetUnixFileMode(path);

    public static X509Certificate2 Load(string pem) => X509Certificate2.CreateFromPem(pem);

    /// <summary>Every certificate in a PEM string.</summary>
    public static X509Certificate2Collection LoadAll(string pem)
    {
        var collection = new X509Certificate2Collection();
        collection.ImportFromPem(pem);
        return collection;
    }

    /// <summary>Builds <paramref name="leaf"/>'s chain trusting only <paramref name="roots"/>, at <paramref name="at"/>.</summary>
    public static (bool Valid, string Status, X509Certificate2[] Elements) Verify(X509Certificate2 leaf, IEnumerable<X509Certificate2> roots, DateTimeOffset at, IEnumerable<X509Certificate2>? intermediates = null)
    {
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.AddRange(roots.ToArray());
        chain.ChainPolicy.ExtraStore.AddRange((intermediates ?? []).ToArray());
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = at.UtcDateTime;
        var valid = chain.Build(leaf);
        var status = string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()));
        return (valid, status, chain.ChainElements.Select(e => X509CertificateLoader.LoadCertificate(e.Certificate.RawData)).ToArray());
    }

    /// <summary>The SAN extension's names as (tag, value) pairs; .NET's own type does not enumerate URIs.</summary>
    public static List<(int Tag, string Value)> SanNames(X509Certificate2 certificate)
    {
        var extension = certificate.Extensions["2.5.29.17"] ?? throw new InvalidOperationException("no SAN");
        var sequence = new AsnReader(extension.RawData, AsnEncodingRules.DER).ReadSequence();
        var names = new List<(int, string)>();
        while (sequence.HasData)
        {
            var tag = sequence.PeekTag();
            names.Add(tag.TagValue is 2 or 6
                ? ((int)tag.TagValue, sequence.ReadCharacterString(UniversalTagNumber.IA5String, tag))
                : ((int)tag.TagValue, Convert.ToHexString(sequence.ReadEncodedValue().Span)));
        }
        return names;
    }
}

/// <summary>A directory deleted with the test.</summary>
internal sealed class TemporaryDirectory : IDisposable
{
    public TemporaryDirectory() => Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bowline-ca-" + Guid.NewGuid().ToString("N"));

    public string Path { get; }

    public string File(string name) => System.IO.Path.Combine(Path, name);

    public void Dispose()
    {
        if (System.IO.Directory.Exists(Path))
        {
            System.IO.Directory.Delete(Path, recursive: true);
        }
    }
}
