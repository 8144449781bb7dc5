using System.CommandLine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Bowline.Cli.Commands;

/// <summary>Options and logging shared by the long-running commands.</summary>
internal static class CommonOptions
{
    public static Option<LogLevel> LogLevel() => new("--log-level")
    {
        Description = "Minimum log level: Trace, Debug, Information, Warning, Error.",
        DefaultValueFactory = _ => Microsoft.Extensions.Logging.LogLevel.Information,
    };

    /// <summary>
    /// A token cancelled on SIGINT or SIGTERM, with the default termination suppressed so the command can drain and
    /// clean up; a second signal is not caught and ends the process at once.
    /// </summary>
    public static CancellationToken ShutdownSignal(CancellationToken commandToken, out IDisposable registrations)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(commandToken);
        var handled = 0;
        void Handle(System.Runtime.InteropServices.PosixSignalContext context)
        {
            if (Interlocked.Exchange(ref handled, 1) == 0)
            {
                context.Cancel = true;
                cts.Cancel();
            }
        }
        var sigterm = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, Handle);
        var sigint = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGINT, Handle);
        registrations = new Registrations(sigterm, sigint, cts);
        return cts.Token;
    }

    private sealed class Registrations(params IDisposable[] items) : IDisposable
    {
        public void Dispose()
        {
            foreach (var item in items)
            {
                item.Dispose();
            }
        }
    }

    /// <summary>One line per event, with a timestamp, to stderr: what <c>bowline up</c> collects into its log folder.</summary>
    public static Action<ILoggingBuilder> Logging(LogLevel level) => logging => logging
        .SetMinimumLevel(level)
        .AddFilter("Microsoft", level > Microsoft.Extensions.Logging.LogLevel.Warning ? level : Microsoft.Extensions.Logging.LogLevel.Warning)
        .AddFilter("Grpc", Microsoft.Extensions.Logging.LogLevel.Warning)
        .AddFilter("Yarp", Microsoft.Extensions.Logging.LogLevel.Warning)
        .AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "yyyy-MM-ddTHH:mm:ss.fffZ ";
            o.UseUtcTimestamp = true;
            o.ColorBehavior = LoggerColorBehavior.Disabled;
        })
        .AddConsole(o => o.LogToStandardErrorThreshold = Microsoft.Extensions.Logging.LogLevel.Trace);
}
