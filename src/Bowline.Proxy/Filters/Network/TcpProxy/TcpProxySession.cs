using System.IO.Pipelines;
using System.Net;
using System.Net.Sockets;
using Bowline.Proxy.Clusters;
using Bowline.Proxy.Http;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Tls;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.Filters.Network.TcpProxy;

/// <summary>
/// One downstream connection through a tcp_proxy: pick the cluster and a host, connect (the cluster's connect timeout,
/// keepalive and transport socket: mesh mTLS originates here as for HTTP), then copy bytes both ways until both sides
/// have closed, with half-close passed on, the idle timeout re-armed by every byte, and the connection's bytes counted.
/// </summary>
internal static partial class TcpProxySession
{
    private const int ChunkSize = 16 * 1024;

    /// <param name="draining">
    /// The listener's close request, which abandons a connect in progress. Deliberately not Kestrel's ConnectionClosed:
    /// that fires when the client's FIN arrives, and a client that writes its request and half-closes at once (as
    /// many do) must still be connected upstream and answered.
    /// </param>
    /// <param name="connection">The downstream connection's chain and peer, for the access log.</param>
    public static async Task RunAsync(IDuplexPipe downstream, TcpProxyConfig config, ConnectionChain connection, SecretStore secrets, ILogger logger, CancellationToken draining)
    {
        var time = config.Time;
        // The connection's record, as an HTTP request's: what the access log reads when the connection ends.
        var info = new RequestInfo { StartTimestamp = time.GetTimestamp(), StartTime = time.GetUtcNow() };
        try
        {
            await ProxyAsync(downstream, config, connection, info, secrets, logger, draining).ConfigureAwait(false);
        }
        finally
        {
            info.EndTimestamp = time.GetTimestamp();
            if (info.IstioSeries is { } series)
            {
                Interlocked.Increment(ref series.Closed);
            }
            if (config.AccessLogs.Length > 0)
            {
                Bowline.Proxy.AccessLogs.AccessLogger.LogAll(config.AccessLogs, new AccessLogs.AccessLogInput(info, connection, null, time));
            }
        }
    }

    private static async Task ProxyAsync(IDuplexPipe downstream, TcpProxyConfig config, ConnectionChain connection, RequestInfo info, SecretStore secrets, ILogger logger, CancellationToken draining)
    {
        var stats = config.Stats;
        stats.ConnectionsTotal.Increment();
        var cluster = config.Pick();
        info.UpstreamCluster = cluster.Name;
        if (cluster.Current is not { } snapshot)
        {
            stats.NoRoute.Increment();
            info.Flags |= ResponseFlags.NoClusterFound;
            LogNoCluster(logger, config.StatPrefix, cluster.Name);
            info.IstioSeries = config.IstioStats?.OpenTcp(info, connection);
            return;
        }
        info.UpstreamService = snapshot.Config.Service;
        var upstream = await ConnectAsync(config, cluster, snapshot, info, secrets, logger, draining).ConfigureAwait(false);
        if (upstream is { } connected)
        {
            info.UpstreamHost = connected.Host;
        }
        // Istio reports a connection once its upstream is known, failed connects (UF, UO, UH) included; the labels
        // name that upstream (its workload and the identity its certificate proved).
        info.IstioSeries = config.IstioStats?.OpenTcp(info, connection);
        if (upstream is null)
        {
            return;
        }
        var (stream, host, socket) = upstream.Value;
        // Not linked to the connection's closed token either: a half-closed client still reads the rest of the upstream's
        // answer. A reset client fails the upward pump, which ends both.
        using var lifetime = new CancellationTokenSource();
        try
        {
            if (config.MaxDownstreamConnectionDuration != Timeout.InfiniteTimeSpan)
            {
                lifetime.CancelAfter(config.MaxDownstreamConnectionDuration);
            }
            using var idle = new IdleTimer(config.IdleTimeout, lifetime);
            var up = PumpUpAsync(downstream.Input, stream, socket, stats, info, idle, lifetime.Token);
            var down = PumpDownAsync(stream, downstream.Output, stats, info, idle, lifetime.Token);
            // Either direction failing ends both: the other side is reset, not left half-open forever.
            var first = await Task.WhenAny(up, down).ConfigureAwait(false);
            if (first.IsFaulted || first.IsCanceled)
            {
                await lifetime.CancelAsync().ConfigureAwait(false);
            }
            try
            {
                await Task.WhenAll(up, down).ConfigureAwait(false);
            }
            catch (Exception e) when (e is IOException or OperationCanceledException or SocketException or ObjectDisposedException)
            {
                if (idle.Fired)
                {
                    stats.IdleTimeouts.Increment();
                }
                else if (lifetime.IsCancellationRequested && config.MaxDownstreamConnectionDuration != Timeout.InfiniteTimeSpan)
                {
                    stats.MaxDurationReached.Increment();
                }
            }
        }
        finally
        {
            await stream.DisposeAsync().ConfigureAwait(false);
            host.RequestEnded();
            cluster.RequestEnded(retry: false);
        }
    }

    private static async Task<(Stream Stream, UpstreamEndpoint Host, Socket Socket)?> ConnectAsync(TcpProxyConfig config, ClusterState cluster, ClusterSnapshot snapshot, RequestInfo info, SecretStore secrets,
        ILogger logger, CancellationToken cancellationToken)
    {
        var settings = snapshot.Config;
        for (var attempt = 0; attempt < config.MaxConnectAttempts; attempt++)
        {
            var host = settings.Balancer.Pick(snapshot.Hosts, null, attempt);
            if (host is null)
            {
                cluster.Stats.NoHealthyUpstream.Increment();
                info.Flags |= ResponseFlags.NoHealthyUpstream;
                LogNoHealthyHost(logger, config.StatPrefix, cluster.Name);
                return null;
            }
            // Envoy's max_connections is the TCP proxy's circuit breaker: the slot is taken first, checked after.
            if (cluster.RequestStarted(retry: false) > settings.Limits.MaxConnections)
            {
                cluster.RequestEnded(retry: false);
                cluster.Stats.ConnectionOverflow.Increment();
                info.Flags |= ResponseFlags.UpstreamOverflow;
                LogOverflow(logger, config.StatPrefix, cluster.Name);
                return null;
            }
            host.RequestStarted();
            Socket? socket = null;
            try
            {
                using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                timeout.CancelAfter(settings.Pool.ConnectTimeout);
                EndPoint target = IPAddress.TryParse(host.Address, out var ip) ? new IPEndPoint(ip, host.Port) : new DnsEndPoint(host.Address, host.Port);
                socket = await ConnectionPools.ConnectSocketAsync(target, settings.Pool.Keepalive, timeout.Token).ConfigureAwait(false);
                Stream stream = new NetworkStream(socket, ownsSocket: true);
                if (settings.Transport is { } transport && snapshot.Hosts.TlsOf(host, transport.Unlabelled) is { } tls)
                {
                    stream = await tls.ConnectAsync(stream, host.Address, null, secrets, timeout.Token, host).ConfigureAwait(false);
                }
                cluster.Stats.ConnectionsTotal.Increment();
                return (stream, host, socket);
            }
            catch (Exception e) when (e is SocketException or IOException or OperationCanceledException or System.Security.Authentication.AuthenticationException)
            {
                socket?.Dispose();
                host.RequestEnded();
                cluster.RequestEnded(retry: false);
                if (cancellationToken.IsCancellationRequested)
                {
                    return null;
                }
                cluster.Stats.ConnectFailures.Increment();
                info.Flags |= ResponseFlags.UpstreamConnectionFailure;
                info.UpstreamHost = host;
                info.UpstreamTransportFailureReason = e.Message;
                LogConnectFailed(logger, config.StatPrefix, cluster.Name, $"{host.Address}:{host.Port}", e.Message);
            }
        }
        config.Stats.ConnectAttemptsExceeded.Increment();
        return null;
    }

    /// <summary>Downstream to upstream; the client's FIN becomes a shutdown of the upstream's send side.</summary>
    private static async Task PumpUpAsync(PipeReader input, Stream upstream, Socket socket, TcpProxyStats stats, RequestInfo info, IdleTimer idle, CancellationToken cancellationToken)
    {
        while (true)
        {
            var result = await input.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            foreach (var segment in buffer)
            {
                await upstream.WriteAsync(segment, cancellationToken).ConfigureAwait(false);
            }
            if (!buffer.IsEmpty)
            {
                await upstream.FlushAsync(cancellationToken).ConfigureAwait(false);
                stats.ReceivedBytes.Add(buffer.Length);
                info.BytesReceived += buffer.Length;
                if (info.IstioSeries is { } series)
                {
                    Interlocked.Add(ref series.ReceivedBytes, buffer.Length);
                }
                idle.Touch();
            }
            input.AdvanceTo(buffer.End);
            if (result.IsCompleted || result.IsCanceled)
            {
                break;
            }
        }
        if (upstream is System.Net.Security.SslStream ssl)
        {
            await ssl.ShutdownAsync().ConfigureAwait(false);
        }
        socket.Shutdown(SocketShutdown.Send);
    }

    /// <summary>Upstream to downstream; the upstream's FIN completes the downstream's output.</summary>
    private static async Task PumpDownAsync(Stream upstream, PipeWriter output, TcpProxyStats stats, RequestInfo info, IdleTimer idle, CancellationToken cancellationToken)
    {
        while (true)
        {
            var memory = output.GetMemory(ChunkSize);
            var read = await upstream.ReadAsync(memory, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                break;
            }
            output.Advance(read);
            stats.SentBytes.Add(read);
            info.BytesSent += read;
            if (info.IstioSeries is { } series)
            {
                Interlocked.Add(ref series.SentBytes, read);
            }
            idle.Touch();
            var flushed = await output.FlushAsync(cancellationToken).ConfigureAwait(false);
            if (flushed.IsCompleted)
            {
                return;
            }
        }
        await output.CompleteAsync().ConfigureAwait(false);
    }

    /// <summary>The idle timeout: cancels the connection when no byte moved for the configured time.</summary>
    private sealed class IdleTimer(TimeSpan timeout, CancellationTokenSource lifetime) : IDisposable
    {
        private readonly CancellationTokenSource? _idle = timeout == Timeout.InfiniteTimeSpan ? null : Arm(timeout, lifetime);

        public bool Fired => _idle?.IsCancellationRequested == true;

        private static CancellationTokenSource Arm(TimeSpan timeout, CancellationTokenSource lifetime)
        {
            var idle = new CancellationTokenSource(timeout);
            idle.Token.Register(static state => ((CancellationTokenSource)state!).Cancel(), lifetime);
            return idle;
        }

        /// <summary>Restarts the countdown (CancelAfter re-arms the same timer; nothing is allocated).</summary>
        public void Touch()
        {
            if (_idle is { IsCancellationRequested: false } idle)
            {
                idle.CancelAfter(timeout);
            }
        }

        public void Dispose() => _idle?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "tcp_proxy {StatPrefix}: cluster {Cluster} is not configured; the connection is closed")]
    private static partial void LogNoCluster(ILogger logger, string statPrefix, string cluster);

    [LoggerMessage(Level = LogLevel.Warning, Message = "tcp_proxy {StatPrefix}: cluster {Cluster} has no healthy host; the connection is closed (UH)")]
    private static partial void LogNoHealthyHost(ILogger logger, string statPrefix, string cluster);

    [LoggerMessage(Level = LogLevel.Warning, Message = "tcp_proxy {StatPrefix}: cluster {Cluster} is at its max_connections; the connection is closed (UO)")]
    private static partial void LogOverflow(ILogger logger, string statPrefix, string cluster);

    [LoggerMessage(Level = LogLevel.Warning, Message = "tcp_proxy {StatPrefix}: connecting to {Host} of cluster {Cluster} failed: {Reason} (UF)")]
    private static partial void LogConnectFailed(ILogger logger, string statPrefix, string cluster, string host, string reason);
}
