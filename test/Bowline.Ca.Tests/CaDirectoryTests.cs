using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using Bowline.Ca.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Ca.Tests;

/// <summary>The CA directory: a generated root survives restarts, and an operator's root or intermediate is used as supplied.</summary>
public sealed class CaDirectoryTests
{
    private static readonly string[] Files = ["ca-cert.pem", "ca-key.pem", "cert-chain.pem", "root-cert.pem"];

    [Fact]
    public void Open_EmptyDirectory_GeneratesARootInIstioFileLayoutWithPrivateKeyFiles()
    {
        using var ca = new TestCa();

        Assert.All(Files, f => Assert.True(File.Exists(ca.Directory.File(f)), f));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, TestCa.ModeOf(ca.Directory.File("ca-key.pem")));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, TestCa.ModeOf(ca.Directory.Path));
        var root = Assert.Single(ca.Ca.TrustBundle.Roots);
        Assert.Equal(root.Thumbprint, TestCa.Load(File.ReadAllText(ca.Directory.File("ca-cert.pem"))).Thumbprint);
        Assert.Equal(ca.Ca.TrustBundle.Pem, File.ReadAllText(ca.Directory.File("root-cert.pem")));
        Assert.Contains("O=cluster.local", root.Subject, StringComparison.Ordinal);
        Assert.True(Assert.IsType<X509BasicConstraintsExtension>(root.Extensions["2.5.29.19"]).CertificateAuthority);
        Assert.Equal(TestCa.Start.AddDays(3650), new DateTimeOffset(root.NotAfter.ToUniversalTime()));
        Assert.DoesNotContain(Directory.GetFiles(ca.Directory.Path), f => f.EndsWith(".tmp", StringComparison.Ordinal));
    }

    [Fact]
    public void Open_SecondInstanceOnSameDirectory_LoadsTheSameRoot()
    {
        using var first = new TestCa();
        var leaf = TestCa.Load(first.Ca.Sign(TestCa.Csr(first.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);
        var key = File.ReadAllText(first.Directory.File("ca-key.pem"));

        using var second = CertificateAuthority.Open(first.Options, new FakeTimeProvider(TestCa.Start.AddHours(1)));

        Assert.Equal(TrustBundle.Thumbprint(first.Ca.TrustBundle.Roots[0]), TrustBundle.Thumbprint(second.TrustBundle.Roots[0]));
        Assert.Equal(key, File.ReadAllText(first.Directory.File("ca-key.pem")));
        Assert.True(TestCa.Verify(leaf, second.TrustBundle.Roots, TestCa.Start.AddHours(1)).Valid);
        using var later = TestCa.Load(second.Sign(TestCa.Csr(first.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);
        Assert.True(TestCa.Verify(later, first.Ca.TrustBundle.Roots, TestCa.Start.AddHours(1)).Valid);
    }

    [Fact]
    public void Open_OperatorIntermediate_ChainIsLeafIntermediateRootAndVerifies()
    {
        using var directory = new TemporaryDirectory();
        var (root, intermediate) = WriteOperatorFiles(directory, intermediateTtl: TimeSpan.FromDays(365));
        using var ca = new TestCa(directory: directory);

        var chain = ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);

        Assert.Equal(3, chain.Count);
        using var leaf = TestCa.Load(chain[0]);
        Assert.Equal(intermediate.Thumbprint, TestCa.Load(chain[1]).Thumbprint);
        Assert.Equal(root.Thumbprint, Assert.Single(TestCa.LoadAll(chain[2])).Thumbprint);
        Assert.Equal(intermediate.Subject, leaf.Issuer);
        var (valid, status, elements) = TestCa.Verify(leaf, [root], TestCa.Start, [TestCa.Load(chain[1])]);
        Assert.True(valid, status);
        Assert.Equal([leaf.Thumbprint, intermediate.Thumbprint, root.Thumbprint], elements.Select(e => e.Thumbprint));
        // The root belongs to the operator: rotating it here would orphan their intermediate.
        Assert.Contains("operator-supplied intermediate", Assert.Throws<InvalidOperationException>(ca.Ca.RotateRoot).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Sign_IntermediateExpiringSoonerThanTheTtl_LeafEndsWithIt()
    {
        using var directory = new TemporaryDirectory();
        var (_, intermediate) = WriteOperatorFiles(directory, intermediateTtl: TimeSpan.FromHours(10));
        using var ca = new TestCa(directory: directory);

        using var leaf = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);

        Assert.Equal(intermediate.NotAfter, leaf.NotAfter);
        ca.Time.Advance(TimeSpan.FromHours(11));
        var e = Assert.Throws<CertificateRequestException>(() => ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews));
        Assert.Equal(CertificateRequestRefusal.SignerExpired, e.Refusal);
    }

    [Fact]
    public void Open_OperatorRootOnly_SignsWithIt()
    {
        using var directory = new TemporaryDirectory();
        var (root, rootKey) = NewCa("CN=Operator Root", null, null, TimeSpan.FromDays(3650));
        Directory.CreateDirectory(directory.Path);
        File.WriteAllText(directory.File("ca-cert.pem"), root.ExportCertificatePem());
        File.WriteAllText(directory.File("ca-key.pem"), rootKey.ExportPkcs8PrivateKeyPem());
        File.WriteAllText(directory.File("root-cert.pem"), root.ExportCertificatePem());
        using var ca = new TestCa(directory: directory);

        var chain = ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);

        Assert.Equal(2, chain.Count);
        Assert.True(TestCa.Verify(TestCa.Load(chain[0]), [root], TestCa.Start).Valid);
    }

    [Fact]
    public void Open_OperatorRsaRoot_SignsEcdsaLeaves()
    {
        using var directory = new TemporaryDirectory();
        using var rsa = RSA.Create(3072);
        var request = new CertificateRequest("CN=Operator RSA Root", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, false, 0, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        using var root = request.CreateSelfSigned(TestCa.Start.AddDays(-1), TestCa.Start.AddYears(5));
        Directory.CreateDirectory(directory.Path);
        File.WriteAllText(directory.File("ca-cert.pem"), root.ExportCertificatePem());
        File.WriteAllText(directory.File("ca-key.pem"), rsa.ExportRSAPrivateKeyPem());
        File.WriteAllText(directory.File("root-cert.pem"), root.ExportCertificatePem());
        using var ca = new TestCa(directory: directory);

        using var leaf = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);

        Assert.Equal("1.2.840.113549.1.1.11", leaf.SignatureAlgorithm.Value);
        Assert.True(TestCa.Verify(leaf, [root], TestCa.Start).Valid);
    }

    [Fact]
    public void Open_IncompleteDirectory_ThrowsNamingTheMissingFile()
    {
        using var directory = new TemporaryDirectory();
        var (root, _) = NewCa("CN=Operator Root", null, null, TimeSpan.FromDays(3650));
        Directory.CreateDirectory(directory.Path);
        File.WriteAllText(directory.File("ca-cert.pem"), root.ExportCertificatePem());

        var e = Assert.Throws<InvalidOperationException>(() => CertificateAuthority.Open(new CaOptions { Directory = directory.Path }, new FakeTimeProvider(TestCa.Start)));

        Assert.Contains("ca-key.pem is missing", e.Message, StringComparison.Ordinal);
        Assert.False(File.Exists(directory.File("root-cert.pem")));
    }

    [Fact]
    public void Open_KeyOfAnotherCertificate_Throws()
    {
        using var directory = new TemporaryDirectory();
        WriteOperatorFiles(directory, TimeSpan.FromDays(30));
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        File.WriteAllText(directory.File("ca-key.pem"), other.ExportPkcs8PrivateKeyPem());

        var e = Assert.Throws<InvalidOperationException>(() => CertificateAuthority.Open(new CaOptions { Directory = directory.Path }, new FakeTimeProvider(TestCa.Start)));

        Assert.Contains("matching private key", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Open_IntermediateOfAnUntrustedRoot_Throws()
    {
        using var directory = new TemporaryDirectory();
        WriteOperatorFiles(directory, TimeSpan.FromDays(30));
        var (stranger, _) = NewCa("CN=Someone Else", null, null, TimeSpan.FromDays(3650));
        File.WriteAllText(directory.File("root-cert.pem"), stranger.ExportCertificatePem());
        File.WriteAllText(directory.File("cert-chain.pem"), File.ReadAllText(directory.File("ca-cert.pem")));

        var e = Assert.Throws<InvalidOperationException>(() => CertificateAuthority.Open(new CaOptions { Directory = directory.Path }, new FakeTimeProvider(TestCa.Start)));

        Assert.Contains("does not chain to a root in root-cert.pem", e.Message, StringComparison.Ordinal);
    }

    /// <summary>A P-384 root and a P-256 intermediate under it, written as an operator would (the key as openssl's "EC PRIVATE KEY").</summary>
    private static (X509Certificate2 Root, X509Certificate2 Intermediate) WriteOperatorFiles(TemporaryDirectory directory, TimeSpan intermediateTtl)
    {
        var (root, rootKey) = NewCa("CN=Operator Root, O=Example", null, null, TimeSpan.FromDays(3650), ECCurve.NamedCurves.nistP384);
        var (intermediate, intermediateKey) = NewCa("CN=Operator Intermediate, O=Example", root, rootKey, intermediateTtl);
        Directory.CreateDirectory(directory.Path);
        File.WriteAllText(directory.File("ca-cert.pem"), intermediate.ExportCertificatePem());
        File.WriteAllText(directory.File("ca-key.pem"), intermediateKey.ExportECPrivateKeyPem());
        File.WriteAllText(directory.File("cert-chain.pem"), intermediate.ExportCertificatePem() + "\n" + root.ExportCertificatePem());
        File.WriteAllText(directory.File("root-cert.pem"), root.ExportCertificatePem());
        return (root, intermediate);
    }

    private static (X509Certificate2 Certificate, ECDsa Key) NewCa(string subject, X509Certificate2? issuer, ECDsa? issuerKey, TimeSpan ttl, ECCurve? curve = null)
    {
        var key = ECDsa.Create(curve ?? ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA384);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(true, issuer is not null, 0, true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, false));
        var notBefore = TestCa.Start.AddDays(-1);
        if (issuer is null)
        {
            return (request.CreateSelfSigned(notBefore, notBefore + ttl), key);
        }
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(issuer, true, false));
        var signed = request.Create(issuer.SubjectName, X509SignatureGenerator.CreateForECDsa(issuerKey!), notBefore, TestCa.Start + ttl, [0x42, 0x01]);
        return (signed, key);
    }
}
