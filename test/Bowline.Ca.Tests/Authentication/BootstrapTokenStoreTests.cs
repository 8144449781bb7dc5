using Bowline.Ca.Authentication;
using Bowline.Ca.Tests.Infrastructure;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.Ca.Tests.Authentication;

public sealed class BootstrapTokenStoreTests
{
    private readonly FakeTimeProvider _time = new(TestCa.Start);

    [Fact]
    public async Task AuthenticateAsync_IssuedToken_ProvesItsIdentity()
    {
        using var directory = new TemporaryDirectory();
        var store = BootstrapTokenStore.Open(directory.Path, _time);

        var token = store.Issue(TestCa.Reviews);
        var result = await store.AuthenticateAsync(new Metadata { { "authorization", "Bearer " + token } }, CancellationToken.None).AsTask().WaitAsync(TimeSpan.FromSeconds(10));

        Assert.Equal(43, token.Length);
        Assert.Matches("^[A-Za-z0-9_-]+$", token);
        Assert.Equal(TestCa.Reviews, result.Identity);
        Assert.Null(result.Failure);
        Assert.Equal(TestCa.Ratings, store.Authenticate("bearer " + store.Issue(TestCa.Ratings)).Identity);
    }

    [Fact]
    public void Open_AfterRestart_KeepsTokensAndStoresOnlyHashesIn0600File()
    {
        using var directory = new TemporaryDirectory();
        var token = BootstrapTokenStore.Open(directory.Path, _time).Issue(TestCa.Reviews);

        var restarted = BootstrapTokenStore.Open(directory.Path, _time);

        Assert.Equal(TestCa.Reviews, restarted.Authenticate("Bearer " + token).Identity);
        var file = directory.File(BootstrapTokenStore.FileName);
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, TestCa.ModeOf(file));
        var text = File.ReadAllText(file);
        Assert.DoesNotContain(token, text, StringComparison.Ordinal);
        Assert.Contains("\"serviceAccount\": \"bookinfo-reviews\"", text, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null, "no 'authorization' metadata")]
    [InlineData("", "no 'authorization' metadata")]
    [InlineData("Basic dXNlcjpwYXNz", "not a bearer token")]
    [InlineData("Bearer ", "empty or too long")]
    [InlineData("Bearer AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "not one this control plane issued")]
    public void Authenticate_BadCredentials_FailWithTheFix(string? authorization, string message)
    {
        using var directory = new TemporaryDirectory();
        var store = BootstrapTokenStore.Open(directory.Path, _time);
        store.Issue(TestCa.Reviews);

        var result = store.Authenticate(authorization);

        Assert.Null(result.Identity);
        Assert.Contains(message, result.Failure, StringComparison.Ordinal);
    }

    [Fact]
    public void Revoke_Identity_InvalidatesAllItsTokensOnly()
    {
        using var directory = new TemporaryDirectory();
        var store = BootstrapTokenStore.Open(directory.Path, _time);
        var first = store.Issue(TestCa.Reviews);
        var second = store.Issue(TestCa.Reviews);
        var ratings = store.Issue(TestCa.Ratings);

        Assert.Equal(2, store.Revoke(TestCa.Reviews));

        Assert.Null(store.Authenticate("Bearer " + first).Identity);
        Assert.Null(store.Authenticate("Bearer " + second).Identity);
        Assert.Equal(TestCa.Ratings, store.Authenticate("Bearer " + ratings).Identity);
        Assert.Null(BootstrapTokenStore.Open(directory.Path, _time).Authenticate("Bearer " + first).Identity);
    }

    [Fact]
    public void Authenticate_TokenIssuedByAnotherProcess_IsSeen()
    {
        using var directory = new TemporaryDirectory();
        var controlPlane = BootstrapTokenStore.Open(directory.Path, _time);
        Assert.Null(controlPlane.Authenticate("Bearer nothing-yet").Identity);

        // bowline up issues into the same file while the control plane runs.
        var token = BootstrapTokenStore.Open(directory.Path, _time).Issue(TestCa.Reviews);

        Assert.Equal(TestCa.Reviews, controlPlane.Authenticate("Bearer " + token).Identity);
    }

    [Fact]
    public void WorkloadIdentity_InvalidSegment_Throws()
    {
        Assert.Throws<ArgumentException>(() => new WorkloadIdentity("default", "a/b"));
        Assert.Throws<ArgumentException>(() => new WorkloadIdentity("..", "reviews"));
        Assert.Throws<ArgumentException>(() => new WorkloadIdentity("", "reviews"));
    }
}
