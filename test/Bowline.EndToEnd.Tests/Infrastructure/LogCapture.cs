using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>
/// Keeps every line a proxy logs (<see cref="MeshHarness.SidecarLogging"/>), so a test can read what the proxy said
/// and wait, bounded, for a line that is written after the client has already seen the outcome.
/// </summary>
internal sealed class LogCapture : ILoggerProvider
{
    private TaskCompletionSource _logged = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public ConcurrentQueue<string> Lines { get; } = new();

    public void Configure(ILoggingBuilder logging)
    {
        logging.AddProvider(this);
        logging.SetMinimumLevel(LogLevel.Information);
    }

    /// <summary>The first line that satisfies <paramref name="match"/>, waiting for it (checked after every line) within <paramref name="bound"/>.</summary>
    public async Task<string> WaitForAsync(Func<string, bool> match, TimeSpan bound)
    {
        using var timeout = new CancellationTokenSource(bound);
        while (true)
        {
            var logged = Volatile.Read(ref _logged).Task;
            if (Lines.FirstOrDefault(match) is { } line)
            {
                return line;
            }
            await logged.WaitAsync(timeout.Token);
        }
    }

    public ILogger CreateLogger(string categoryName) => new Logger(this);

    public void Dispose()
    {
    }

    private sealed class Logger(LogCapture capture) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            capture.Lines.Enqueue($"{logLevel}: {formatter(state, exception)}");
            Interlocked.Exchange(ref capture._logged, new(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
        }
    }
}
