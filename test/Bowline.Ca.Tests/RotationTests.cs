using Bowline.Ca.Tests.Infrastructure;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Ca.Tests;

public sealed class RotationTests
{
    [Fact]
    public void RotateRoot_BundleHoldsBothRootsAndNewLeavesChainToTheNewOne()
    {
        using var ca = new TestCa();
        var before = ca.Ca.TrustBundle;
        var oldRoot = before.Roots[0];
        using var oldLeaf = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);

        var after = ca.Ca.RotateRoot();

        Assert.True(before.ChangeToken.HasChanged);
        Assert.False(after.ChangeToken.HasChanged);
        Assert.Same(after, ca.Ca.TrustBundle);
        Assert.Equal(2, after.Roots.Count);
        var newRoot = after.Roots[0];
        Assert.NotEqual(oldRoot.Thumbprint, newRoot.Thumbprint);
        Assert.Equal(oldRoot.Thumbprint, after.Roots[1].Thumbprint);

        var chain = ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Ratings)), TestCa.Ratings);
        using var newLeaf = TestCa.Load(chain[0]);
        Assert.Equal(2, TestCa.LoadAll(chain[^1]).Count);
        Assert.True(TestCa.Verify(newLeaf, [newRoot], TestCa.Start).Valid);
        Assert.False(TestCa.Verify(newLeaf, [oldRoot], TestCa.Start).Valid);
        // Both generations verify against the bundle, so peers on either side of the rotation talk.
        Assert.True(TestCa.Verify(oldLeaf, after.Roots, TestCa.Start).Valid);
        Assert.True(TestCa.Verify(newLeaf, after.Roots, TestCa.Start).Valid);

        Assert.Equal([TestCa.Reviews], ca.Ca.IdentitiesWithLeavesUnder(TrustBundle.Thumbprint(oldRoot)));
        Assert.Equal([TestCa.Ratings], ca.Ca.IdentitiesWithLeavesUnder(TrustBundle.Thumbprint(newRoot)));
    }

    [Fact]
    public void RetireRoot_AfterOldLeavesExpire_RemovesItFromBundleAndDisk()
    {
        using var ca = new TestCa();
        var oldThumbprint = TrustBundle.Thumbprint(ca.Ca.TrustBundle.Roots[0]);
        ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);
        var rotated = ca.Ca.RotateRoot();
        var newThumbprint = TrustBundle.Thumbprint(rotated.Roots[0]);

        // Still held: retiring would break reviews' peers.
        var held = Assert.Throws<InvalidOperationException>(() => ca.Ca.RetireRoot(oldThumbprint));
        Assert.Contains("ns/default/sa/bookinfo-reviews", held.Message, StringComparison.Ordinal);
        Assert.Contains("rotate first", Assert.Throws<InvalidOperationException>(() => ca.Ca.RetireRoot(newThumbprint)).Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentException>(() => ca.Ca.RetireRoot("00"));

        // Reviews renews under the new root; its old leaf lives on until it expires.
        ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);
        Assert.Equal([TestCa.Reviews], ca.Ca.IdentitiesWithLeavesUnder(oldThumbprint));
        ca.Time.Advance(TimeSpan.FromHours(24) + TimeSpan.FromSeconds(1));
        Assert.Empty(ca.Ca.IdentitiesWithLeavesUnder(oldThumbprint));

        var retired = ca.Ca.RetireRoot(oldThumbprint);

        Assert.True(rotated.ChangeToken.HasChanged);
        Assert.Equal(newThumbprint, TrustBundle.Thumbprint(Assert.Single(retired.Roots)));
        Assert.Single(TestCa.LoadAll(File.ReadAllText(ca.Directory.File("root-cert.pem"))));
        using var restarted = CertificateAuthority.Open(ca.Options, ca.Time);
        Assert.Equal(newThumbprint, TrustBundle.Thumbprint(Assert.Single(restarted.TrustBundle.Roots)));
    }

    [Fact]
    public void RetireRoot_EvenIfLeavesRemain_Retires()
    {
        using var ca = new TestCa();
        var oldThumbprint = TrustBundle.Thumbprint(ca.Ca.TrustBundle.Roots[0]);
        ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);
        ca.Ca.RotateRoot();

        Assert.Single(ca.Ca.RetireRoot(oldThumbprint, evenIfLeavesRemain: true).Roots);
        Assert.Empty(ca.Ca.IdentitiesWithLeavesUnder(oldThumbprint));
    }

    [Fact]
    public void RotateRoot_Restart_KeepsBothRootsWithTheNewOneSigning()
    {
        using var ca = new TestCa();
        var rotated = ca.Ca.RotateRoot();

        using var restarted = CertificateAuthority.Open(ca.Options, new FakeTimeProvider(TestCa.Start));

        Assert.Equal(rotated.Roots.Select(r => r.Thumbprint), restarted.TrustBundle.Roots.Select(r => r.Thumbprint));
        using var leaf = TestCa.Load(restarted.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);
        Assert.True(TestCa.Verify(leaf, [rotated.Roots[0]], TestCa.Start).Valid);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, TestCa.ModeOf(ca.Directory.File("ca-key.pem")));
    }
}

public sealed class StagedRotationTests
{
    [Fact]
    public void BeginRootRotation_TrustsTheNewRootFirst_SignsUnderItOnceEveryoneRenewed_ThenRetiresTheOld()
    {
        using var ca = new TestCa();
        var oldRoot = ca.Ca.TrustBundle.Roots[0];
        ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews);
        ca.Time.Advance(TimeSpan.FromHours(1));

        var staged = ca.Ca.BeginRootRotation();

        // Step 1: both roots trusted, leaves still under the old one (peers that have not renewed trust only it).
        Assert.Equal(2, staged.Roots.Count);
        var newRoot = staged.Roots.Single(r => r.Thumbprint != oldRoot.Thumbprint);
        Assert.Equal(TrustBundle.Thumbprint(newRoot), ca.Ca.PendingRootThumbprint);
        var during = ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Ratings)), TestCa.Ratings);
        using (var leaf = TestCa.Load(during[0]))
        {
            Assert.True(TestCa.Verify(leaf, [oldRoot], ca.Time.GetUtcNow()).Valid);
        }
        Assert.Equal(2, TestCa.LoadAll(during[^1]).Count);
        Assert.Contains("already under way", Assert.Throws<InvalidOperationException>(() => ca.Ca.BeginRootRotation()).Message, StringComparison.Ordinal);
        Assert.Contains("staged root rotation", Assert.Throws<InvalidOperationException>(() => ca.Ca.RotateRoot()).Message, StringComparison.Ordinal);

        // Step 2: reviews' leaf (issued at 0h, 24h) renews at 12h; with a tenth of its life for retries, 14.4h.
        ca.Time.Advance(TimeSpan.FromHours(13));
        Assert.NotNull(ca.Ca.PendingRootThumbprint);
        ca.Time.Advance(TimeSpan.FromHours(0.5));
        Assert.Null(ca.Ca.PendingRootThumbprint);
        using (var leaf = TestCa.Load(ca.Ca.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]))
        {
            Assert.True(TestCa.Verify(leaf, [newRoot], ca.Time.GetUtcNow()).Valid);
        }
        Assert.Equal(2, ca.Ca.TrustBundle.Roots.Count);

        // Step 3: the last leaf under the old root (ratings, issued at 1h) is past its renewal at 15.4h: the old root goes.
        ca.Time.Advance(TimeSpan.FromHours(0.5));
        Assert.Equal(2, ca.Ca.TrustBundle.Roots.Count);
        ca.Time.Advance(TimeSpan.FromHours(0.5));
        Assert.Equal(TrustBundle.Thumbprint(newRoot), TrustBundle.Thumbprint(Assert.Single(ca.Ca.TrustBundle.Roots)));
        Assert.False(File.Exists(ca.Directory.File("next-ca-key.pem")));
    }

    [Fact]
    public void BeginRootRotation_SurvivesARestart_TheStagedRootStaysPending()
    {
        using var ca = new TestCa();
        var staged = ca.Ca.BeginRootRotation();
        var pending = ca.Ca.PendingRootThumbprint;
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, TestCa.ModeOf(ca.Directory.File("next-ca-key.pem")));

        var time = new FakeTimeProvider(TestCa.Start);
        using var restarted = CertificateAuthority.Open(ca.Options, time);

        Assert.Equal(pending, restarted.PendingRootThumbprint);
        Assert.Equal(staged.Roots.Select(r => r.Thumbprint), restarted.TrustBundle.Roots.Select(r => r.Thumbprint));
        time.Advance(ca.Options.MaxCertificateTtl);
        Assert.Null(restarted.PendingRootThumbprint);
        using var leaf = TestCa.Load(restarted.Sign(TestCa.Csr(ca.SpiffeId(TestCa.Reviews)), TestCa.Reviews)[0]);
        var issuer = restarted.TrustBundle.Roots.Single(r => TestCa.Verify(leaf, [r], time.GetUtcNow()).Valid);
        Assert.Equal(pending, TrustBundle.Thumbprint(issuer));
    }
}
