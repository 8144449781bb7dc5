using System.Net;
using Bowline.Proxy.Stats;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Clusters.Dns;

/// <summary>
/// Keeps a DNS cluster's hosts in line with what its names resolve to: resolves at once when the cluster (or its
/// targets) arrive, then every refresh interval, and publishes a new host set only when the addresses changed. A failed
/// resolution keeps the previous hosts (Envoy's behaviour), is counted in <c>update_failure</c> and logged once per
/// failing streak. Host objects are kept by address and port, so their live state survives re-resolution.
/// </summary>
/// <remarks>Owned by the cluster's <see cref="ClusterState"/>; disposed when the cluster stops being a DNS cluster or goes away. Thread-safe.</remarks>
internal sealed partial class DnsRefresher : IDisposable
{
    private readonly ClusterState _cluster;
    private readonly IDnsResolver _resolver;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Stat _attempts;
    private readonly Stat _successes;
    private readonly Stat _failures;
    private readonly CancellationTokenSource _stopping = new();
    private readonly Dictionary<(string, int), UpstreamEndpoint> _hosts = [];
    private readonly SemaphoreSlim _gate = new(1, 1);
    private DnsSettings _settings;
    private ITimer? _timer;
    private bool _failing;

    public DnsRefresher(ClusterState cluster, DnsSettings settings, IDnsResolver resolver, TimeProvider time, ProxyStats stats, ILogger logger)
    {
        _cluster = cluster;
        _settings = settings;
        _resolver = resolver;
        _time = time;
        _logger = logger;
        _attempts = stats.Get(StatTag.Cluster(cluster.Name), "update_attempt");
        _successes = stats.Get(StatTag.Cluster(cluster.Name), "update_success");
        _failures = stats.Get(StatTag.Cluster(cluster.Name), "update_failure");
        _timer = time.CreateTimer(_ => _ = RefreshAsync(), null, TimeSpan.Zero, settings.RefreshRate);
    }

    /// <summary>A completed task after each refresh; tests and warming wait on it.</summary>
    public Task? LastRefresh { get; private set; }

    public void Update(DnsSettings settings)
    {
        var previous = Interlocked.Exchange(ref _settings, settings);
        if (!previous.Equals(settings))
        {
            _timer?.Change(TimeSpan.Zero, settings.RefreshRate);
        }
    }

    private Task RefreshAsync()
    {
        var task = RefreshCoreAsync();
        LastRefresh = task;
        return task;
    }

    private async Task RefreshCoreAsync()
    {
        if (!await _gate.WaitAsync(0).ConfigureAwait(false))
        {
            return;
        }
        try
        {
            var settings = Volatile.Read(ref _settings);
            _attempts.Increment();
            var endpoints = new List<WeightedEndpoint>();
            foreach (var target in settings.Targets)
            {
                var addresses = IPAddress.TryParse(target.Host, out var literal) ? [literal] : await _resolver.ResolveAsync(target.Host, _stopping.Token).ConfigureAwait(false);
                var usable = addresses.Where(a => settings.Family is not { } family || a.AddressFamily == family).ToList();
                if (usable.Count == 0)
                {
                    throw new IOException($"{target.Host} resolved to no {(settings.Family is null ? "" : settings.Family + " ")}address");
                }
                foreach (var address in settings.Logical ? usable.Take(1) : usable)
                {
                    endpoints.Add(new WeightedEndpoint(Host(address.ToString(), target.Port), target.Weight, true, target.Priority));
                }
            }
            _successes.Increment();
            if (_failing)
            {
                _failing = false;
                LogRecovered(_logger, _cluster.Name);
            }
            if (!_stopping.IsCancellationRequested)
            {
                // A refresher disposed mid-resolution (the cluster is no longer DNS) must not overwrite its new hosts.
                _cluster.PublishHosts(endpoints);
            }
        }
        catch (Exception e) when (e is System.Net.Sockets.SocketException or IOException or ArgumentException)
        {
            _failures.Increment();
            if (!_failing)
            {
                _failing = true;
                LogFailed(_logger, _cluster.Name, e.Message);
            }
        }
        catch (OperationCanceledException) when (_stopping.IsCancellationRequested)
        {
        }
        finally
        {
            _gate.Release();
        }
    }

    private UpstreamEndpoint Host(string address, int port)
    {
        lock (_hosts)
        {
            if (!_hosts.TryGetValue((address, port), out var host))
            {
                host = _hosts[(address, port)] = new UpstreamEndpoint(address, port) { JoinedAt = _time.GetTimestamp() };
            }
            return host;
        }
    }

    public void Dispose()
    {
        Interlocked.Exchange(ref _timer, null)?.Dispose();
        // Cancelled but not disposed: a resolution still in flight reads the token.
        _stopping.Cancel();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "dns: resolving cluster {Cluster} failed, keeping its previous hosts: {Reason}; further failures are counted in cluster.{Cluster}.update_failure")]
    private static partial void LogFailed(ILogger logger, string cluster, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "dns: cluster {Cluster} resolves again")]
    private static partial void LogRecovered(ILogger logger, string cluster);
}
