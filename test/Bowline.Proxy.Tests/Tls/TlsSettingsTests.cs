using System.Security.Cryptography.X509Certificates;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;

namespace Bowline.Proxy.Tests.Tls;

/// <summary>
/// A peer's chain is never completed from the network: a handshake runs on a data-path event thread, and a download
/// from the URL a hostile certificate names would hold that thread (and every connection on it) for as long as it hangs.
/// </summary>
public sealed class TlsSettingsTests
{
    [Fact]
    public void ChainPolicy_AgainstConfiguredRoots_TrustsOnlyThemAndDownloadsNothing()
    {
        var root = TestPki.Root();

        var policy = TlsSettings.Compile(null, "test").ChainPolicy([root]);

        Assert.Equal(X509ChainTrustMode.CustomRootTrust, policy.TrustMode);
        Assert.Equal([root.Thumbprint], policy.CustomTrustStore.Select(c => c.Thumbprint));
        Assert.Equal(X509RevocationMode.NoCheck, policy.RevocationMode);
        Assert.True(policy.DisableCertificateDownloads);
    }

    [Fact]
    public void ChainPolicy_WithoutRoots_UsesThePlatformStoreAndDownloadsNothing()
    {
        var policy = TlsSettings.Compile(null, "test").ChainPolicy(null);

        Assert.Equal(X509ChainTrustMode.System, policy.TrustMode);
        Assert.True(policy.DisableCertificateDownloads);
    }
}
