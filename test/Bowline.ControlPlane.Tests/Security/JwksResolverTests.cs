using System.Net;
using Bowline.ControlPlane.Security;
using Bowline.ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace Bowline.ControlPlane.Tests.Security;

/// <summary>
/// The control plane's JWKS fetcher, on a fake clock against a local server: first fetch, the 20-minute refresh, stale
/// keys kept when the issuer is down, fail-closed when none was ever fetched, OpenID discovery, and what counts as a change.
/// </summary>
public sealed class JwksResolverTests : IAsyncLifetime
{
    private readonly FakeTimeProvider _time = new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
    private readonly CapturingLogger<JwksResolver> _log = new();
    private JwksServer _server = null!;
    private JwksResolver _resolver = null!;

    public async Task InitializeAsync()
    {
        _server = await JwksServer.StartAsync();
        _server.Answer("/jwks.json", JwksServer.IstioSampleJwks);
        _resolver = new JwksResolver(_time, _log, new JwksResolverOptions { MaxStaleness = TimeSpan.FromHours(6) });
    }

    public async Task DisposeAsync()
    {
        _resolver.Dispose();
        await _server.DisposeAsync();
    }

    private JwksSource Source(string path = "/jwks.json") => new("testing@secure.istio.io", _server.Url(path), TimeSpan.FromSeconds(5));

    private Task<bool> NextChange()
    {
        var changed = new TaskCompletionSource<bool>(TaskCreationOptions.RunContinuationsAsynchronously);
        _resolver.Changed += () => changed.TrySetResult(true);
        return changed.Task;
    }

    [Fact]
    public async Task UseAsync_NewSource_IsFetchedOnceAndCachedPerUri()
    {
        var source = Source();

        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        var entry = _resolver.Current.Find(source.Key)!;
        Assert.Equal(JwksServer.IstioSampleJwks, entry.Jwks);
        Assert.Equal((_time.GetUtcNow(), (string?)null, false), (entry.FetchedAt!.Value, entry.LastError, entry.Stale));
        Assert.Equal(1, _server.Requests);
        Assert.Equal(TimeSpan.FromMinutes(20), _resolver.NextRefreshIn);
    }

    [Fact]
    public async Task RefreshTimer_AfterTwentyMinutes_FetchesAgain_AndRotatedKeysRaiseChanged()
    {
        var source = Source();
        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        _server.Answer("/jwks.json", JwksServer.RotatedJwks);
        var changed = NextChange();

        _time.Advance(TimeSpan.FromMinutes(19));
        Assert.Equal(1, _server.Requests);
        _time.Advance(TimeSpan.FromMinutes(1));

        Assert.True(await changed.WaitAsync(TestTimeouts.Default));
        Assert.Equal(JwksServer.RotatedJwks, _resolver.Current.Find(source.Key)!.Jwks);
        Assert.Equal(2, _server.Requests);
    }

    [Fact]
    public async Task Refresh_SameKeysReorderedOrReformatted_IsNotAChange()
    {
        var source = Source();
        var two = """{"keys":[{"kid":"a","kty":"oct","k":"AAAA"},{"kid":"b","kty":"oct","k":"BBBB"}]}""";
        _server.Answer("/jwks.json", two);
        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        var raised = false;
        _resolver.Changed += () => raised = true;
        _server.Answer("/jwks.json", """{ "keys": [ {"kty":"oct","kid":"b","k":"BBBB"}, {"kid":"a","k":"AAAA","kty":"oct"} ] }""");

        await _resolver.RefreshAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        Assert.False(raised);
        Assert.Equal(two, _resolver.Current.Find(source.Key)!.Jwks);
    }

    [Fact]
    public async Task Refresh_IssuerDown_KeepsServingTheLastGoodJwks_WithAWarningAMetricAndFasterRetries()
    {
        var source = Source();
        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        var raised = false;
        _resolver.Changed += () => raised = true;
        _server.Answer("/jwks.json", "upstream connect error", status: 503);
        var failuresBefore = ControlPlaneMetrics.JwksFetchFailures.Value;

        await _resolver.RefreshAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        var entry = _resolver.Current.Find(source.Key)!;
        Assert.Equal(JwksServer.IstioSampleJwks, entry.Jwks);
        Assert.True(entry.Stale);
        Assert.Contains("HTTP 503 upstream connect error", entry.LastError, StringComparison.Ordinal);
        Assert.False(raised);
        Assert.True(ControlPlaneMetrics.JwksFetchFailures.Value > failuresBefore);
        var warning = Assert.Single(_log.Entries, e => e.Level == LogLevel.Warning);
        Assert.Contains("still serving the JWKS fetched at 2026-01-01T00:00:00", warning.Message, StringComparison.Ordinal);
        Assert.Equal(TimeSpan.FromMinutes(1), _resolver.NextRefreshIn);

        await _resolver.RefreshAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        Assert.Equal(TimeSpan.FromMinutes(2), _resolver.NextRefreshIn);

        _server.Answer("/jwks.json", JwksServer.IstioSampleJwks);
        await _resolver.RefreshAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        Assert.False(_resolver.Current.Find(source.Key)!.Stale);
        Assert.Equal(TimeSpan.FromMinutes(20), _resolver.NextRefreshIn);
    }

    [Fact]
    public async Task Refresh_NoSuccessForLongerThanMaxStaleness_StopsServingTheKeys()
    {
        var source = Source();
        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);
        _server.Answer("/jwks.json", "down", status: 500);
        var changed = NextChange();
        _time.Advance(TimeSpan.FromHours(6));

        await _resolver.RefreshAsync(TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        Assert.True(await changed.WaitAsync(TestTimeouts.Default));
        Assert.Null(_resolver.Current.Find(source.Key)!.Jwks);
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("is no longer served", StringComparison.Ordinal));
    }

    [Fact]
    public async Task UseAsync_NeverFetched_HasNoKeys_RetriesWithinSeconds_AndTheFirstSuccessIsAChange()
    {
        var source = Source("/not-yet.json");

        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        var entry = _resolver.Current.Find(source.Key)!;
        Assert.Null(entry.Jwks);
        Assert.Contains("HTTP 404", entry.LastError, StringComparison.Ordinal);
        Assert.Contains(_log.Entries, e => e.Level == LogLevel.Error && e.Message.Contains("tokens of issuer testing@secure.istio.io are rejected (401)", StringComparison.Ordinal));
        Assert.Equal(TimeSpan.FromSeconds(1), _resolver.NextRefreshIn);

        _server.Answer("/not-yet.json", JwksServer.IstioSampleJwks);
        var changed = NextChange();
        _time.Advance(TimeSpan.FromSeconds(1));

        Assert.True(await changed.WaitAsync(TestTimeouts.Default));
        Assert.Equal(JwksServer.IstioSampleJwks, _resolver.Current.Find(source.Key)!.Jwks);
    }

    [Fact]
    public async Task UseAsync_IssuerDoesNotAnswer_GivesUpAtTheRulesTimeout()
    {
        _server.Hang("/slow.json");
        var source = Source("/slow.json") with { Timeout = TimeSpan.FromSeconds(2) };

        var use = _resolver.UseAsync([source], TestTimeouts.Token());
        Assert.False(use.IsCompleted);
        _time.Advance(TimeSpan.FromSeconds(2));
        await use.WaitAsync(TestTimeouts.Default);

        Assert.Contains("no answer within 2s", _resolver.Current.Find(source.Key)!.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseAsync_IssuerOnly_FindsTheJwksByOpenIdDiscovery()
    {
        _server.Answer("/issuer/.well-known/openid-configuration", $$"""{"issuer": "{{_server.Url("/issuer")}}", "jwks_uri": "{{_server.Url("/keys")}}"}""");
        _server.Answer("/keys", JwksServer.IstioSampleJwks);
        var source = new JwksSource(_server.Url("/issuer"), null, TimeSpan.FromSeconds(5));

        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        Assert.Equal(_server.Url("/issuer/.well-known/openid-configuration"), source.Key);
        Assert.Equal(JwksServer.IstioSampleJwks, _resolver.Current.Find(source.Key)!.Jwks);
    }

    [Fact]
    public async Task UseAsync_ResponseIsNotAJwks_IsNotInlined()
    {
        _server.Answer("/internal", """{"password": "hunter2"}""");
        var source = Source("/internal");

        await _resolver.UseAsync([source], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        var entry = _resolver.Current.Find(source.Key)!;
        Assert.Null(entry.Jwks);
        Assert.Contains("the response is not a JWKS", entry.LastError, StringComparison.Ordinal);
    }

    [Fact]
    public async Task UseAsync_SourceNoLongerInConfig_IsForgotten()
    {
        await _resolver.UseAsync([Source()], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        await _resolver.UseAsync([], TestTimeouts.Token()).WaitAsync(TestTimeouts.Default);

        Assert.Empty(_resolver.Current.Entries);
        Assert.Equal(Timeout.InfiniteTimeSpan, _resolver.NextRefreshIn);
    }

    [Theory]
    [InlineData("169.254.169.254", true)]
    [InlineData("100.100.100.200", true)]
    [InlineData("fe80::1", true)]
    [InlineData("fd00:ec2::254", true)]
    [InlineData("::ffff:169.254.169.254", true)]
    [InlineData("127.0.0.1", false)]
    [InlineData("10.0.0.7", false)]
    public void IsBlocked_LinkLocalAndCloudMetadata_AreNeverFetchedFrom(string address, bool blocked)
    {
        Assert.Equal(blocked, JwksResolver.IsBlocked(IPAddress.Parse(address)));
    }
}

/// <summary>Keeps what was logged, for asserting that a degraded mode is heard of.</summary>
internal sealed class CapturingLogger<T> : ILogger<T>
{
    private readonly List<(LogLevel Level, string Message)> _entries = [];

    public IReadOnlyList<(LogLevel Level, string Message)> Entries
    {
        get
        {
            lock (_entries)
            {
                return _entries.ToList();
            }
        }
    }

    public IDisposable? BeginScope<TState>(TState state)
        where TState : notnull => null;

    public bool IsEnabled(LogLevel logLevel) => true;

    public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
    {
        lock (_entries)
        {
            _entries.Add((logLevel, formatter(state, exception)));
        }
    }
}
