using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>
/// Records the lines a host logs (warnings and up), so a test can wait for the one that reports what it provoked
/// instead of polling a counter. Thread-safe.
/// </summary>
internal sealed class MeshHarnessLog : ILoggerProvider
{
    private readonly ConcurrentQueue<string> _lines = new();
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public IReadOnlyCollection<string> Lines => _lines;

    /// <summary>Passed as a host's logging hook.</summary>
    public void Attach(ILoggingBuilder logging) => logging.AddProvider(this);

    /// <summary>The first line that satisfies <paramref name="match"/>, now or when it is logged; bounded by the caller.</summary>
    public async Task<string> WaitForAsync(Func<string, bool> match)
    {
        while (true)
        {
            var changed = Volatile.Read(ref _changed).Task;
            if (_lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }
            await changed;
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private void Add(string line)
    {
        _lines.Enqueue(line);
        Interlocked.Exchange(ref _changed, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
    }

    private sealed class Logger(MeshHarnessLog log) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Warning;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            if (IsEnabled(logLevel))
            {
                log.Add(formatter(state, exception));
            }
        }
    }
}
