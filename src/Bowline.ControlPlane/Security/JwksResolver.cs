using System.Net;
using System.Net.Sockets;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bowline.ControlPlane.Config.Parsing;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Security;

/// <summary>How often the resolver fetches; Istio's defaults (pilot/pkg/model/jwks_resolver.go).</summary>
internal sealed record JwksResolverOptions
{
    /// <summary>A good JWKS is fetched again this often (Istio's PILOT_JWT_PUB_KEY_REFRESH_INTERVAL).</summary>
    public TimeSpan RefreshInterval { get; init; } = TimeSpan.FromMinutes(20);

    /// <summary>After a refresh fails, the next try comes this soon, then twice as late each time up to <see cref="MaxFailureInterval"/>.</summary>
    public TimeSpan FailureInterval { get; init; } = TimeSpan.FromMinutes(1);

    public TimeSpan MaxFailureInterval { get; init; } = TimeSpan.FromMinutes(60);

    /// <summary>A JWKS never fetched is retried this soon (doubling up to <see cref="FailureInterval"/>): until then its issuer's tokens are refused.</summary>
    public TimeSpan FirstFetchRetryInterval { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>A JWKS not refreshed for this long is no longer served (Istio's eviction): keys that old may have been revoked.</summary>
    public TimeSpan MaxStaleness { get; init; } = TimeSpan.FromDays(7);

    /// <summary>A JWKS is a few keys; a larger body is not one.</summary>
    public int MaxResponseBytes { get; init; } = 1 << 20;
}

/// <summary>
/// Fetches the JWKS of every RequestAuthentication rule that names a <c>jwksUri</c> (or only an issuer, by OpenID
/// discovery), as istiod does by default so proxies never reach out themselves, caches each per URI, and refreshes them
/// on a timer. A failed refresh keeps the last good JWKS (a warning, <c>bowline_jwks_stale</c>); a JWKS never fetched
/// is absent from <see cref="Current"/> and translation fails closed. <see cref="Changed"/> fires when a background
/// refresh changes the keys any proxy would be served.
/// </summary>
/// <remarks>
/// Thread-safety: every public member may be called from any thread; fetch rounds are serialized, and <see cref="Current"/>
/// is an immutable snapshot swapped atomically. The resolver owns its HttpClient.
/// </remarks>
internal sealed partial class JwksResolver : IDisposable
{
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly JwksResolverOptions _options;
    private readonly HttpClient _http;
    private readonly SemaphoreSlim _round = new(1, 1);
    private readonly Dictionary<string, SourceState> _states = new(StringComparer.Ordinal);
    private readonly CancellationTokenSource _disposed = new();
    private readonly ITimer _timer;
    private JwksSnapshot _current = JwksSnapshot.Empty;

    public JwksResolver(TimeProvider time, ILogger<JwksResolver> logger, JwksResolverOptions? options = null, HttpMessageHandler? handler = null)
    {
        _time = time;
        _logger = logger;
        _options = options ?? new JwksResolverOptions();
        _http = new HttpClient(handler ?? NewHandler(), disposeHandler: true)
        {
            // Each fetch has its own timeout from the rule, on the injected clock.
            Timeout = Timeout.InfiniteTimeSpan,
            MaxResponseContentBufferSize = _options.MaxResponseBytes,
        };
        _timer = time.CreateTimer(_ => _ = RefreshDueAsync(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
    }

    /// <summary>Raised (on a timer thread) after a background refresh changed the keys of a source.</summary>
    public event Action? Changed;

    /// <summary>What the resolver has now, for the next config generation.</summary>
    public JwksSnapshot Current => Volatile.Read(ref _current);

    /// <summary>How long until the next scheduled fetch; infinite with nothing to fetch. For tests and <c>/debug</c>.</summary>
    public TimeSpan NextRefreshIn
    {
        get
        {
            lock (_states)
            {
                return _states.Count == 0 ? Timeout.InfiniteTimeSpan : Max(TimeSpan.Zero, _states.Values.Min(s => s.NextDue) - _time.GetUtcNow());
            }
        }
    }

    /// <summary>
    /// Makes <paramref name="sources"/> the set the resolver keeps (others are forgotten), fetches the ones it has never
    /// tried, and returns when each has succeeded or failed (each bounded by its timeout), like istiod's first fetch on
    /// the push path, so the generation about to be published already has their keys.
    /// </summary>
    public async Task UseAsync(IReadOnlyCollection<JwksSource> sources, CancellationToken cancellationToken)
    {
        await _round.WaitAsync(cancellationToken).ConfigureAwait(false);
        try
        {
            List<SourceState> fresh;
            lock (_states)
            {
                var wanted = sources.ToDictionary(s => s.Key, StringComparer.Ordinal);
                foreach (var key in _states.Keys.Where(k => !wanted.ContainsKey(k)).ToList())
                {
                    _states.Remove(key);
                }
                fresh = [];
                foreach (var source in wanted.Values)
                {
                    if (_states.TryGetValue(source.Key, out var state))
                    {
                        state.Source = source;
                    }
                    else
                    {
                        _states[source.Key] = state = new SourceState(source);
                        fresh.Add(state);
                    }
                }
            }
            await Task.WhenAll(fresh.Select(s => FetchAsync(s, cancellationToken))).ConfigureAwait(false);
            Publish();
        }
        finally
        {
            _round.Release();
            Arm();
        }
    }

    /// <summary>Fetches every source now, whatever its schedule; raises <see cref="Changed"/> if keys changed.</summary>
    public Task RefreshAsync(CancellationToken cancellationToken) => RefreshAsync(all: true, cancellationToken);

    private Task RefreshDueAsync() => RefreshAsync(all: false, _disposed.Token);

    private async Task RefreshAsync(bool all, CancellationToken cancellationToken)
    {
        try
        {
            await _round.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
            return;
        }
        var changed = false;
        try
        {
            List<SourceState> due;
            lock (_states)
            {
                var now = _time.GetUtcNow();
                due = _states.Values.Where(s => all || s.NextDue <= now).ToList();
            }
            await Task.WhenAll(due.Select(s => FetchAsync(s, cancellationToken))).ConfigureAwait(false);
            changed = Publish();
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            // Disposed or cancelled mid-round: nothing to publish.
        }
        finally
        {
            _round.Release();
            Arm();
        }
        if (changed)
        {
            Changed?.Invoke();
        }
    }

    /// <summary>One attempt for one source; records the outcome and schedules the next attempt. Never throws but for cancellation.</summary>
    private async Task FetchAsync(SourceState state, CancellationToken cancellationToken)
    {
        var source = state.Source;
        string? jwks = null;
        string? error;
        try
        {
            var uri = source.JwksUri ?? await DiscoverAsync(source, cancellationToken).ConfigureAwait(false);
            var body = await GetAsync(uri, source.Timeout, cancellationToken).ConfigureAwait(false);
            // Only a JWKS may be inlined: a jwksUri pointed at some internal endpoint must not get its body into proxy config.
            var problem = RequestAuthenticationParser.JwksProblems(body).FirstOrDefault(p => p.IsError).Message;
            error = problem is null ? null : $"the response is not a JWKS: {problem}";
            jwks = problem is null ? body : null;
        }
        catch (FetchException e)
        {
            error = e.Message;
        }
        var now = _time.GetUtcNow();
        lock (_states)
        {
            if (error is null)
            {
                ControlPlaneMetrics.JwksFetchSuccesses.Add(1);
                if (state.Jwks is not null && state.LastError is not null)
                {
                    LogRecovered(_logger, source.Key);
                }
                if (!SameKeys(state.Jwks, jwks!))
                {
                    if (state.Jwks is not null)
                    {
                        LogKeysChanged(_logger, source.Key);
                    }
                    state.Jwks = jwks;
                }
                state.FetchedAt = now;
                state.LastError = null;
                state.Backoff = TimeSpan.Zero;
                state.NextDue = now + _options.RefreshInterval;
                return;
            }
            ControlPlaneMetrics.JwksFetchFailures.Add(1);
            state.LastError = error;
            if (state.Jwks is null)
            {
                state.Backoff = state.Backoff == TimeSpan.Zero ? _options.FirstFetchRetryInterval : Min(state.Backoff * 2, _options.FailureInterval);
                LogNeverFetched(_logger, source.Key, source.Issuer, error, state.Backoff);
            }
            else if (now - state.FetchedAt >= _options.MaxStaleness)
            {
                // Istio evicts a key it could not refresh for this long; serving it forever would outlive a revocation.
                state.Jwks = null;
                state.Backoff = _options.FailureInterval;
                LogExpired(_logger, source.Key, source.Issuer, state.FetchedAt!.Value, error);
            }
            else
            {
                state.Backoff = state.Backoff == TimeSpan.Zero ? _options.FailureInterval : Min(state.Backoff * 2, _options.MaxFailureInterval);
                LogServingStale(_logger, source.Key, state.FetchedAt!.Value, error, state.Backoff);
            }
            state.NextDue = now + state.Backoff;
        }
    }

    /// <summary>OpenID Connect Discovery: the <c>jwks_uri</c> of the issuer's configuration document.</summary>
    private async Task<string> DiscoverAsync(JwksSource source, CancellationToken cancellationToken)
    {
        var body = await GetAsync(source.DiscoveryUri, source.Timeout, cancellationToken).ConfigureAwait(false);
        try
        {
            using var document = JsonDocument.Parse(body);
            if (document.RootElement.ValueKind == JsonValueKind.Object
                && document.RootElement.TryGetProperty("jwks_uri", out var uri) && uri.ValueKind == JsonValueKind.String
                && RequestAuthenticationParser.JwksUriProblem(uri.GetString()!) is null)
            {
                return uri.GetString()!;
            }
        }
        catch (JsonException)
        {
        }
        throw new FetchException($"{source.DiscoveryUri} is not an OpenID configuration with an http(s) jwks_uri");
    }

    private async Task<string> GetAsync(string uri, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var timeoutSource = new CancellationTokenSource(timeout, _time);
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, timeoutSource.Token, _disposed.Token);
        try
        {
            using var response = await _http.GetAsync(uri, linked.Token).ConfigureAwait(false);
            var body = await response.Content.ReadAsStringAsync(linked.Token).ConfigureAwait(false);
            if (!response.IsSuccessStatusCode)
            {
                throw new FetchException($"GET {uri}: HTTP {(int)response.StatusCode} {Truncate(body)}");
            }
            return body;
        }
        catch (OperationCanceledException) when (timeoutSource.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
        {
            throw new FetchException($"GET {uri}: no answer within {timeout.TotalSeconds:0.###}s (the rule's timeout)");
        }
        catch (HttpRequestException e)
        {
            throw new FetchException($"GET {uri}: {e.Message}");
        }
    }

    /// <summary>Swaps in the snapshot of what the states hold; true when the served keys changed.</summary>
    private bool Publish()
    {
        JwksSnapshot next;
        lock (_states)
        {
            next = new JwksSnapshot(_states.ToDictionary(s => s.Key, s => new JwksEntry(s.Value.Jwks, s.Value.FetchedAt, s.Value.LastError), StringComparer.Ordinal));
            ControlPlaneMetrics.SetJwksStale(_states.Values.Count(s => s.Jwks is null || s.LastError is not null));
        }
        var previous = Interlocked.Exchange(ref _current, next);
        return !previous.ServesSameKeysAs(next);
    }

    private void Arm()
    {
        if (_disposed.IsCancellationRequested)
        {
            return;
        }
        var next = NextRefreshIn;
        try
        {
            _timer.Change(next, Timeout.InfiniteTimeSpan);
        }
        catch (ObjectDisposedException)
        {
        }
    }

    /// <summary>
    /// Istio's comparison: the same document, or the same keys in another order (sorted by kid). A reordering alone must
    /// not push every proxy.
    /// </summary>
    private static bool SameKeys(string? old, string fresh)
    {
        if (old is null)
        {
            return false;
        }
        if (old == fresh)
        {
            return true;
        }
        try
        {
            return JsonNode.DeepEquals(SortedKeys(old), SortedKeys(fresh));
        }
        catch (JsonException)
        {
            return false;
        }
    }

    private static JsonArray SortedKeys(string jwks) =>
        new(JsonNode.Parse(jwks)!["keys"]!.AsArray()
            .Select(k => k!.DeepClone())
            .OrderBy(k => k is JsonObject o && o["kid"] is JsonValue v && v.TryGetValue<string>(out var kid) ? kid : "", StringComparer.Ordinal)
            .ThenBy(k => k!.ToJsonString(), StringComparer.Ordinal)
            .ToArray());

    /// <summary>
    /// Istio's guard for JWKS fetches (blockedCIDRDialContext): never connect to a link-local address or a cloud
    /// metadata endpoint, whatever name resolved to it; a jwksUri must not turn the control plane into a way to read them.
    /// </summary>
    private static SocketsHttpHandler NewHandler() => new()
    {
        AllowAutoRedirect = true,
        MaxAutomaticRedirections = 3,
        PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        ConnectCallback = async (context, cancellationToken) =>
        {
            var addresses = await Dns.GetHostAddressesAsync(context.DnsEndPoint.Host, cancellationToken).ConfigureAwait(false);
            var allowed = addresses.Where(a => !IsBlocked(a)).ToArray();
            if (allowed.Length == 0)
            {
                throw new HttpRequestException($"{context.DnsEndPoint.Host} resolves only to link-local or cloud metadata addresses ({string.Join(", ", addresses.Select(a => a.ToString()))}), which JWKS fetches may not reach");
            }
            var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
            try
            {
                await socket.ConnectAsync(allowed, context.DnsEndPoint.Port, cancellationToken).ConfigureAwait(false);
                return new NetworkStream(socket, ownsSocket: true);
            }
            catch
            {
                socket.Dispose();
                throw;
            }
        },
    };

    internal static bool IsBlocked(IPAddress address)
    {
        if (address.IsIPv4MappedToIPv6)
        {
            address = address.MapToIPv4();
        }
        if (address.AddressFamily == AddressFamily.InterNetwork)
        {
            var bytes = address.GetAddressBytes();
            // 169.254.0.0/16 link-local (AWS, GCP, Azure metadata); 100.100.100.200 Alibaba Cloud's metadata.
            return (bytes[0] == 169 && bytes[1] == 254) || address.Equals(AlibabaMetadata);
        }
        return address.IsIPv6LinkLocal || address.Equals(AwsMetadataV6);
    }

    private static readonly IPAddress AlibabaMetadata = IPAddress.Parse("100.100.100.200");
    private static readonly IPAddress AwsMetadataV6 = IPAddress.Parse("fd00:ec2::254");

    private static string Truncate(string body) => body.Length <= 100 ? body : body[..100] + "...";

    private static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    private static TimeSpan Max(TimeSpan a, TimeSpan b) => a > b ? a : b;

    public void Dispose()
    {
        _disposed.Cancel();
        _timer.Dispose();
        _http.Dispose();
    }

    private sealed class SourceState(JwksSource source)
    {
        public JwksSource Source { get; set; } = source;

        public string? Jwks { get; set; }

        public DateTimeOffset? FetchedAt { get; set; }

        public string? LastError { get; set; }

        public TimeSpan Backoff { get; set; }

        public DateTimeOffset NextDue { get; set; }
    }

    /// <summary>A fetch that failed for a reason worth telling the operator (the message says which).</summary>
    private sealed class FetchException(string message) : Exception(message);

    [LoggerMessage(Level = LogLevel.Error, Message = "jwks: {Source}: fetch failed, and no JWKS was ever fetched from it: tokens of issuer {Issuer} are rejected (401) until one is; retrying in {Retry}: {Error}")]
    private static partial void LogNeverFetched(ILogger logger, string source, string issuer, string error, TimeSpan retry);

    [LoggerMessage(Level = LogLevel.Warning, Message = "jwks: {Source}: refresh failed; still serving the JWKS fetched at {FetchedAt:O}; retrying in {Retry}: {Error}")]
    private static partial void LogServingStale(ILogger logger, string source, DateTimeOffset fetchedAt, string error, TimeSpan retry);

    [LoggerMessage(Level = LogLevel.Error, Message = "jwks: {Source}: no successful refresh since {FetchedAt:O}; that JWKS is no longer served and tokens of issuer {Issuer} are rejected (401) until a fetch succeeds: {Error}")]
    private static partial void LogExpired(ILogger logger, string source, string issuer, DateTimeOffset fetchedAt, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "jwks: {Source}: refreshed again after failures")]
    private static partial void LogRecovered(ILogger logger, string source);

    [LoggerMessage(Level = LogLevel.Information, Message = "jwks: {Source}: the keys changed; pushing them to the proxies")]
    private static partial void LogKeysChanged(ILogger logger, string source);
}
