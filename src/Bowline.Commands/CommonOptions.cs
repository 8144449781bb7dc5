using System.CommandLine;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Console;

namespace Bowline.Commands;

/// <summary>Options and logging shared by the long-running commands.</summary>
public static class CommonOptions
{
    public static Option<LogLevel> LogLevel() => new("--log-level")
    {
        Description = "Minimum log level: Trace, Debug, Information, Warning, Error.",
        DefaultValueFactory = _ => Microsoft.Extensions.Logging.LogLevel.Information,
    };

    /// <summary>Waits until the command is cancelled, SIGINT or SIGTERM arrives (<paramref name="shutdown"/>), or the host stops itself.</summary>
    public static async Task WaitForShutdownAsync(CancellationToken shutdown, CancellationToken hostStopping)
    {
        using var either = CancellationTokenSource.CreateLinkedTokenSource(shutdown, hostStopping);
        try
        {
            await Task.Delay(Timeout.Infinite, either.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>Rejects a port option outside 0-65535 (0: any free port) at parse time, naming the option.</summary>
    public static T Port<T>(this T option)
        where T : Option
    {
        option.Validators.Add(result =>
        {
            var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : null;
            if (text is not null && (!int.TryParse(text, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var port) || port > 65535))
            {
                result.AddError($"{option.Name} {text}: a port is a number from 0 to 65535 (0 picks a free one)");
            }
        });
        return option;
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
        .AddConsole(o =>
        {
            o.LogToStandardErrorThreshold = Microsoft.Extensions.Logging.LogLevel.Trace;
            // A proxy logs from its event threads (DataPathThreading): when whatever reads stderr falls behind, lines
            // are dropped rather than the threads that carry traffic blocked.
            o.QueueFullMode = ConsoleLoggerQueueFullMode.DropWrite;
        });
}
