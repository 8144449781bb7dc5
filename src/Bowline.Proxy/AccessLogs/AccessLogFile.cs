using System.Text;
using Bowline.Proxy.Stats;
using Microsoft.Extensions.Logging;

namespace Bowline.Proxy.AccessLogs;

/// <summary>
/// The file flusher: request workers append a finished line to an in-memory buffer and return at once; one background
/// thread per file writes the buffer out every second or as soon as 64 KiB are waiting. The buffer is bounded: when
/// the file cannot keep up (a full disk, a FIFO nobody reads, a stalled network mount), lines are dropped and counted,
/// and a request never waits on the disk. The file is opened by the flusher (opening a FIFO blocks until a reader
/// comes), reopened after <see cref="Reopen"/> (SIGUSR1 or the admin's <c>/reopen_logs</c>, for rotation), and a write
/// or open failure is a log line and a counter, never a crash. Runtime state: one per path, for the proxy's life.
/// </summary>
internal sealed partial class AccessLogFile : IDisposable
{
    private const int FlushThreshold = 64 * 1024;
    public const int DefaultMaxBuffered = 4 * 1024 * 1024;

    private readonly string _path;
    private readonly int _maxBuffered;
    private readonly TimeSpan _flushInterval;
    private readonly ILogger _logger;
    private readonly AccessLogFileStats _stats;
    private readonly Lock _gate = new();
    private readonly AutoResetEvent _wake = new(false);
    private readonly Thread _flusher;
    private MemoryStream _pending = new();
    private MemoryStream _writing = new();
    private readonly List<TaskCompletionSource> _flushWaiters = [];
    private volatile bool _reopen;
    private volatile bool _stopping;
    private bool _failing;

    public AccessLogFile(string path, ProxyStats stats, ILogger logger, TimeSpan? flushInterval = null, int maxBuffered = DefaultMaxBuffered)
    {
        _path = path;
        _maxBuffered = maxBuffered;
        _flushInterval = flushInterval ?? TimeSpan.FromSeconds(1);
        _logger = logger;
        _stats = new AccessLogFileStats(stats);
        // A thread of its own, not the pool: a write that blocks (a FIFO without a reader) must block only this.
        _flusher = new Thread(Run) { IsBackground = true, Name = $"access log {path}" };
        _flusher.Start();
    }

    public string Path => _path;

    /// <summary>Buffers one line (UTF-8); drops it, counted, when the buffer is full. Never blocks on the file.</summary>
    public void Append(StringBuilder line)
    {
        var bytes = 0;
        foreach (var chunk in line.GetChunks())
        {
            bytes += Encoding.UTF8.GetByteCount(chunk.Span);
        }
        bool wake;
        lock (_gate)
        {
            if (_stopping || _pending.Length + bytes > _maxBuffered)
            {
                _stats.Dropped.Increment();
                return;
            }
            var start = (int)_pending.Length;
            _pending.SetLength(start + bytes);
            var target = _pending.GetBuffer().AsSpan(start, bytes);
            foreach (var chunk in line.GetChunks())
            {
                target = target[Encoding.UTF8.GetBytes(chunk.Span, target)..];
            }
            _pending.Position = _pending.Length;
            _stats.WriteBuffered.Increment();
            _stats.TotalBuffered.Add(bytes);
            wake = _pending.Length >= FlushThreshold;
        }
        if (wake)
        {
            _wake.Set();
        }
    }

    /// <summary>Completes when everything buffered before the call has been written (or has failed to be); for shutdown and tests.</summary>
    public Task FlushAsync()
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_gate)
        {
            if (!_flusher.IsAlive)
            {
                return Task.CompletedTask;
            }
            _flushWaiters.Add(done);
        }
        _wake.Set();
        return done.Task;
    }

    /// <summary>Closes and reopens the file before the next write (log rotation).</summary>
    public void Reopen()
    {
        _reopen = true;
        _wake.Set();
    }

    /// <summary>A line a logger failed to format: counted with the dropped ones.</summary>
    public void CountFailedLine() => _stats.Dropped.Increment();

    private void Run()
    {
        Stream? file = null;
        try
        {
            while (true)
            {
                var stopping = _stopping;
                var signalled = _wake.WaitOne(stopping ? TimeSpan.Zero : _flushInterval);
                if (!signalled)
                {
                    _stats.FlushedByTimer.Increment();
                }
                if (_reopen)
                {
                    _reopen = false;
                    file?.Dispose();
                    file = null;
                }
                TaskCompletionSource[] waiters;
                lock (_gate)
                {
                    (_pending, _writing) = (_writing, _pending);
                    _stats.TotalBuffered.Add(-_writing.Length);
                    waiters = [.. _flushWaiters];
                    _flushWaiters.Clear();
                }
                if (_writing.Length > 0)
                {
                    file = Write(file);
                }
                foreach (var waiter in waiters)
                {
                    waiter.TrySetResult();
                }
                if (stopping)
                {
                    // The swap after the stop was seen took every line appended before it (Append refuses later ones).
                    return;
                }
            }
        }
        finally
        {
            file?.Dispose();
        }
    }

    private Stream? Write(Stream? file)
    {
        try
        {
            file ??= Open();
            _writing.Position = 0;
            _writing.CopyTo(file);
            file.Flush();
            _stats.WriteCompleted.Increment();
            if (_failing)
            {
                _failing = false;
                LogRecovered(_logger, _path);
            }
            return file;
        }
        catch (Exception e)
        {
            // Any failure (an I/O error, a path the OS refuses) loses the batch, counted, and never ends the thread:
            // the next flush opens the file afresh.
            _stats.WriteFailed.Increment();
            _stats.Dropped.Add(CountLines(_writing));
            if (!_failing)
            {
                _failing = true;
                LogWriteFailed(_logger, _path, e.Message);
            }
            file?.Dispose();
            return null;
        }
        finally
        {
            _writing.SetLength(0);
        }
    }

    private Stream Open()
    {
        // Envoy writes these to its own descriptors, whatever they are (a pipe, a terminal, systemd's journal socket).
        if (_path is "/dev/stdout" or "/dev/stderr")
        {
            return _path == "/dev/stdout" ? Console.OpenStandardOutput() : Console.OpenStandardError();
        }
        try
        {
            return new FileStream(_path, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, Share = FileShare.ReadWrite | FileShare.Delete, BufferSize = 0 });
        }
        catch (Exception e) when ((e is IOException or ArgumentException) && File.Exists(_path))
        {
            // A FIFO, a pipe or a terminal (/dev/stdout) cannot seek to its end: open it for plain writing.
            try
            {
                return new FileStream(_path, FileMode.Open, FileAccess.Write, FileShare.ReadWrite, bufferSize: 0);
            }
            catch (Exception again) when (again is IOException or UnauthorizedAccessException)
            {
                _stats.ReopenFailed.Increment();
                throw;
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _stats.ReopenFailed.Increment();
            throw;
        }
    }

    private static long CountLines(MemoryStream buffer) => buffer.GetBuffer().AsSpan(0, (int)buffer.Length).Count((byte)'\n');

    /// <summary>Asks the flusher to write what is buffered and stop; <see cref="AccessLogFiles"/> waits for all of them at once.</summary>
    public void BeginStop()
    {
        lock (_gate)
        {
            _stopping = true;
        }
        _wake.Set();
    }

    /// <summary>Waits (bounded) for the flusher to finish; a file blocked for good does not hold shutdown.</summary>
    public bool WaitStopped(TimeSpan timeout) => _flusher.Join(timeout);

    /// <summary>Flushes what is buffered and stops the flusher (bounded: a blocked file does not hold shutdown).</summary>
    public void Dispose()
    {
        BeginStop();
        if (WaitStopped(TimeSpan.FromSeconds(2)))
        {
            _wake.Dispose();
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "access log {Path}: write failed ({Reason}); lines are dropped and counted until it works again")]
    private static partial void LogWriteFailed(ILogger logger, string path, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "access log {Path}: writing again")]
    private static partial void LogRecovered(ILogger logger, string path);
}

/// <summary>Envoy's file counters (<c>filesystem.*</c>, summed over the proxy's log files) and Bowline's count of dropped lines.</summary>
internal sealed class AccessLogFileStats(ProxyStats stats)
{
    public Stat WriteBuffered { get; } = stats.Get("filesystem.write_buffered");
    public Stat WriteCompleted { get; } = stats.Get("filesystem.write_completed");
    public Stat WriteFailed { get; } = stats.Get("filesystem.write_failed");
    public Stat FlushedByTimer { get; } = stats.Get("filesystem.flushed_by_timer");
    public Stat ReopenFailed { get; } = stats.Get("filesystem.reopen_failed");
    public Stat TotalBuffered { get; } = stats.Get("filesystem.write_total_buffered");
    public Stat Dropped { get; } = stats.Get("bowline.access_log.dropped");
}

/// <summary>The proxy's access log files by path, shared by every listener that names one; they live as long as the proxy.</summary>
internal sealed class AccessLogFiles(ProxyStats stats, ILoggerFactory loggers) : IDisposable
{
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, Lazy<AccessLogFile>> _files = new(StringComparer.Ordinal);

    public AccessLogFile Get(string path) =>
        _files.GetOrAdd(path, p => new Lazy<AccessLogFile>(() => new AccessLogFile(p, stats, loggers.CreateLogger<AccessLogFile>()))).Value;

    /// <summary>Raised when a reopen is asked for (after every file has been told), so a caller can wait for a signal to land.</summary>
    public event Action? ReopenRequested;

    /// <summary>Reopens every file (SIGUSR1, <c>POST /reopen_logs</c>).</summary>
    public void ReopenAll()
    {
        try
        {
            ReopenFiles();
        }
        finally
        {
            ReopenRequested?.Invoke();
        }
    }

    private void ReopenFiles()
    {
        foreach (var file in _files.Values.Where(f => f.IsValueCreated))
        {
            file.Value.Reopen();
        }
    }

    /// <summary>Stops every flusher at once and waits for them against one deadline.</summary>
    public void Dispose()
    {
        var files = _files.Values.Where(f => f.IsValueCreated).Select(f => f.Value).ToList();
        foreach (var file in files)
        {
            file.BeginStop();
        }
        var deadline = Environment.TickCount64 + 2000;
        foreach (var file in files)
        {
            file.WaitStopped(TimeSpan.FromMilliseconds(Math.Max(0, deadline - Environment.TickCount64)));
        }
    }
}
