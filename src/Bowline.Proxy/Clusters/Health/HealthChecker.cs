using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using Bowline.Proxy.Stats;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Clusters.Health;

/// <summary>
/// Envoy's active health checking for one cluster: every interval (plus jitter) each host is probed — an HTTP GET
/// with the expected statuses, the gRPC health protocol (<c>grpc.health.v1.Health/Check</c>, SERVING), or a TCP
/// connect — within the timeout. A host failing <c>unhealthy_threshold</c> probes in a row takes no new requests; it
/// returns after <c>healthy_threshold</c> passes. Combined with EDS health and outlier ejection in the host set.
/// </summary>
/// <remarks>
/// New hosts start healthy and are probed at once (Envoy starts them failed and holds the cluster warming until the
/// first round; a mesh's EDS health already says the workload is ready). Owned by its <see cref="ClusterState"/>.
/// </remarks>
internal sealed partial class HealthChecker : IDisposable
{
    private readonly ClusterState _cluster;
    private readonly TimeProvider _time;
    private readonly Random _random;
    private readonly ILogger _logger;
    private readonly HttpMessageInvoker _http;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<UpstreamEndpoint, (int Failures, int Successes)> _state = [];
    private readonly Stat _attempts;
    private readonly Stat _successes;
    private readonly Stat _failures;
    private readonly Stat _networkFailures;
    private readonly Stat _healthy;
    private HealthCheckConfig _config;
    private ITimer? _timer;
    private int _running;

    public HealthChecker(ClusterState cluster, HealthCheckConfig config, TimeProvider time, Random random, ProxyStats stats, ILogger logger)
    {
        _cluster = cluster;
        _config = config;
        _time = time;
        _random = random;
        _logger = logger;
        // Probes use their own connections, as Envoy's do: a wedged request pool must not hide a healthy host, nor the reverse.
        _http = new HttpMessageInvoker(new SocketsHttpHandler { UseProxy = false, AllowAutoRedirect = false, PooledConnectionIdleTimeout = TimeSpan.FromSeconds(30), ActivityHeadersPropagator = null });
        var tag = StatTag.Cluster(cluster.Name);
        _attempts = stats.Get(tag, "health_check.attempt");
        _successes = stats.Get(tag, "health_check.success");
        _failures = stats.Get(tag, "health_check.failure");
        _networkFailures = stats.Get(tag, "health_check.network_failure");
        _healthy = stats.Get(tag, "health_check.healthy");
        // Assigned before it first fires, so a round that completes at once can reschedule it.
        _timer = time.CreateTimer(_ => _ = RoundAsync(), null, Timeout.InfiniteTimeSpan, Timeout.InfiniteTimeSpan);
        _timer.Change(TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    public void Update(HealthCheckConfig config) => Volatile.Write(ref _config, config);

    /// <summary>The last round's task, so tests can wait for a round to finish.</summary>
    public Task LastRound { get; private set; } = Task.CompletedTask;

    private Task RoundAsync()
    {
        var round = RoundCoreAsync();
        LastRound = round;
        return round;
    }

    private async Task RoundCoreAsync()
    {
        if (Interlocked.Exchange(ref _running, 1) == 1)
        {
            return;
        }
        var config = Volatile.Read(ref _config);
        try
        {
            var hosts = _cluster.Current?.Hosts.All.Select(h => h.Endpoint).Distinct().ToList() ?? [];
            var results = await Task.WhenAll(hosts.Select(h => ProbeAsync(h, config))).ConfigureAwait(false);
            var changed = false;
            lock (_state)
            {
                foreach (var gone in _state.Keys.Except(hosts).ToList())
                {
                    _state.Remove(gone);
                }
                for (var i = 0; i < hosts.Count; i++)
                {
                    changed |= Record(hosts[i], results[i], config);
                }
                _healthy.Set(hosts.Count(h => !h.FailedActiveHealthCheck));
            }
            if (changed)
            {
                _cluster.HealthChanged();
            }
        }
        finally
        {
            Volatile.Write(ref _running, 0);
            var jitter = config.Jitter > TimeSpan.Zero ? TimeSpan.FromTicks(_random.NextInt64(config.Jitter.Ticks)) : TimeSpan.Zero;
            _timer?.Change(config.Interval + jitter, Timeout.InfiniteTimeSpan);
        }
    }

    private bool Record(UpstreamEndpoint host, bool passed, HealthCheckConfig config)
    {
        var (failures, successes) = _state.GetValueOrDefault(host);
        (failures, successes) = passed ? (0, successes + 1) : (failures + 1, 0);
        _state[host] = (failures, successes);
        if (!passed && !host.FailedActiveHealthCheck && failures >= config.UnhealthyThreshold)
        {
            host.FailedActiveHealthCheck = true;
            LogUnhealthy(_logger, _cluster.Name, host.ToString(), failures);
            return true;
        }
        if (passed && host.FailedActiveHealthCheck && successes >= config.HealthyThreshold)
        {
            host.FailedActiveHealthCheck = false;
            // Envoy's slow start: a host back from failing its checks ramps up again.
            host.JoinedAt = _time.GetTimestamp();
            LogHealthy(_logger, _cluster.Name, host.ToString());
            return true;
        }
        return false;
    }

    private async Task<bool> ProbeAsync(UpstreamEndpoint host, HealthCheckConfig config)
    {
        _attempts.Increment();
        using var deadline = new CancellationTokenSource(config.Timeout, _time);
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(deadline.Token, _stopping.Token);
        try
        {
            var passed = config.Kind switch
            {
                HealthCheckKind.Tcp => await TcpAsync(host, timeout.Token).ConfigureAwait(false),
                HealthCheckKind.Grpc => await GrpcAsync(host, config, timeout.Token).ConfigureAwait(false),
                _ => await HttpAsync(host, config, timeout.Token).ConfigureAwait(false),
            };
            (passed ? _successes : _failures).Increment();
            return passed;
        }
        catch (Exception e) when (e is HttpRequestException or SocketException or IOException or OperationCanceledException or FormatException or InvalidOperationException)
        {
            if (_stopping.IsCancellationRequested)
            {
                return !host.FailedActiveHealthCheck;
            }
            _failures.Increment();
            _networkFailures.Increment();
            return false;
        }
    }

    private async Task<bool> HttpAsync(UpstreamEndpoint host, HealthCheckConfig config, CancellationToken cancellationToken)
    {
        using var request = new HttpRequestMessage(HttpMethod.Get, host.Prefix + config.Path);
        // Envoy's default authority is the cluster name; Istio's names (outbound|9080||...) are not valid host names, so
        // then the probed host's own address is the authority.
        request.Headers.Host = config.Host ?? (Uri.CheckHostName(_cluster.Name) == UriHostNameType.Dns ? _cluster.Name : $"{host.Address}:{host.Port}");
        request.Headers.UserAgent.ParseAdd("Envoy/HC");
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        return config.IsExpected((int)response.StatusCode);
    }

    private async Task<bool> GrpcAsync(UpstreamEndpoint host, HealthCheckConfig config, CancellationToken cancellationToken)
    {
        // grpc.health.v1.HealthCheckRequest { string service = 1; } in one length-prefixed gRPC message.
        var service = System.Text.Encoding.UTF8.GetBytes(config.GrpcService);
        var message = new byte[service.Length == 0 ? 0 : 2 + service.Length];
        if (service.Length > 0)
        {
            message[0] = 0x0A;
            message[1] = (byte)service.Length;
            service.CopyTo(message, 2);
        }
        var frame = new byte[5 + message.Length];
        BinaryPrimitives.WriteUInt32BigEndian(frame.AsSpan(1), (uint)message.Length);
        message.CopyTo(frame, 5);
        using var request = new HttpRequestMessage(HttpMethod.Post, host.Prefix + config.Path)
        {
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
            Content = new ByteArrayContent(frame),
        };
        request.Content.Headers.ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue("application/grpc");
        request.Headers.TryAddWithoutValidation("te", "trailers");
        if (config.Host is { } authority)
        {
            request.Headers.Host = authority;
        }
        using var response = await _http.SendAsync(request, cancellationToken).ConfigureAwait(false);
        var body = await response.Content.ReadAsByteArrayAsync(cancellationToken).ConfigureAwait(false);
        var status = response.TrailingHeaders.TryGetValues("grpc-status", out var values) || response.Headers.TryGetValues("grpc-status", out values) ? values.FirstOrDefault() : null;
        // HealthCheckResponse { ServingStatus status = 1; } with SERVING = 1: the message is 0x08 0x01.
        return status == "0" && body.Length >= 7 && body[5] == 0x08 && body[6] == 0x01;
    }

    private static async Task<bool> TcpAsync(UpstreamEndpoint host, CancellationToken cancellationToken)
    {
        using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
        await socket.ConnectAsync(IPAddress.Parse(host.Address), host.Port, cancellationToken).ConfigureAwait(false);
        return true;
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _timer, null)?.Dispose();
        _stopping.Cancel();
        _http.Dispose();
        var changed = false;
        foreach (var host in _cluster.Current?.Hosts.All.Select(h => h.Endpoint) ?? [])
        {
            // Without a checker nothing would ever clear the verdict.
            changed |= host.FailedActiveHealthCheck;
            host.FailedActiveHealthCheck = false;
        }
        if (changed)
        {
            _cluster.HealthChanged();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "health check: {Host} of {Cluster} failed {Failures} checks in a row and takes no new requests")]
    private static partial void LogUnhealthy(ILogger logger, string cluster, string host, int failures);

    [LoggerMessage(Level = LogLevel.Information, Message = "health check: {Host} of {Cluster} passes its checks again")]
    private static partial void LogHealthy(ILogger logger, string cluster, string host);
}
