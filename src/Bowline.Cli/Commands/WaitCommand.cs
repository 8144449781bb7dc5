using System.CommandLine;
using System.Security.Cryptography;
using System.Text.Json;

namespace Bowline.Cli.Commands;

/// <summary>
/// <c>bowline wait FILE</c>: blocks until the change a config file makes has reached every proxy it affects: the
/// control plane has read the file's current content, translated it for every connected proxy, and each proxy whose
/// config it changed has ACKed it. Says "applied to N of M proxies" and names the laggards and the proxies that NACKed.
/// Exit codes: 0 applied everywhere, 1 rejected (by the control plane's validation or a proxy's NACK), 2 timed out or
/// unreachable.
/// </summary>
internal static class WaitCommand
{
    public static Command Create()
    {
        var file = new Argument<FileInfo>("file") { Description = "A config file in the control plane's config directory, as it is now." };
        var address = MeshApi.AddressOption();
        var output = MeshApi.OutputOption();
        var timeout = new Option<TimeSpan>("--timeout") { Description = "How long to wait (for example 30s, or 00:01:00). Default 60 s.", DefaultValueFactory = _ => TimeSpan.FromSeconds(60), CustomParser = ParseTimeout };
        var command = new Command("wait", "Wait until every proxy a config file's change affects has acknowledged it; name the ones that have not, or rejected it.") { file, address, output, timeout };
        command.SetAction(async (result, cancellationToken) =>
        {
            var path = result.GetValue(file)!.FullName;
            if (!File.Exists(path))
            {
                await Console.Error.WriteLineAsync($"bowline wait: {path} does not exist").ConfigureAwait(false);
                return 2;
            }
            // The same hash the control plane takes of the text it read: this exact content, not an older one.
            var hash = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(await File.ReadAllTextAsync(path, cancellationToken).ConfigureAwait(false))));
            using var http = MeshApi.Client(result.GetValue(address)!);
            using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            deadline.CancelAfter(result.GetValue(timeout));
            var query = $"/debug/wait?file={Uri.EscapeDataString(path)}&hash={hash}";
            string? last = null;
            while (true)
            {
                try
                {
                    var (text, json) = await MeshApi.GetAsync(http, query, deadline.Token).ConfigureAwait(false);
                    using (json)
                    {
                        last = text;
                        if (Verdict(json.RootElement) is { } code)
                        {
                            await Report(json.RootElement, text, result.GetValue(output) == "json", timedOut: false).ConfigureAwait(false);
                            return code;
                        }
                    }
                    await Task.Delay(TimeSpan.FromMilliseconds(200), deadline.Token).ConfigureAwait(false);
                }
                catch (OperationCanceledException) when (deadline.IsCancellationRequested && !cancellationToken.IsCancellationRequested)
                {
                    if (last is not null)
                    {
                        using var json = JsonDocument.Parse(last);
                        await Report(json.RootElement, last, result.GetValue(output) == "json", timedOut: true).ConfigureAwait(false);
                    }
                    else
                    {
                        await Console.Error.WriteLineAsync("bowline wait: timed out before the control plane answered").ConfigureAwait(false);
                    }
                    return 2;
                }
                catch (MeshApiException e)
                {
                    await Console.Error.WriteLineAsync($"bowline wait: {e.Message}").ConfigureAwait(false);
                    return 2;
                }
            }
        });
        return command;
    }

    /// <summary>The exit code once the outcome is known; null while the change is still on its way.</summary>
    private static int? Verdict(JsonElement report)
    {
        var state = report.GetProperty("State").GetString();
        if (state == "rejected")
        {
            return 1;
        }
        if (state != "loaded")
        {
            return null;
        }
        var proxies = report.GetProperty("Proxies").EnumerateArray().Select(p => p.GetProperty("State").GetString()).ToList();
        return proxies.Contains("pending") ? null : proxies.Contains("nacked") || proxies.Contains("failed") ? 1 : 0;
    }

    private static async Task Report(JsonElement report, string text, bool json, bool timedOut)
    {
        if (json)
        {
            await Console.Out.WriteLineAsync(text).ConfigureAwait(false);
            return;
        }
        var file = report.GetProperty("File").GetString();
        var state = report.GetProperty("State").GetString();
        foreach (var error in report.GetProperty("Errors").EnumerateArray())
        {
            await Console.Error.WriteLineAsync(error.GetString()).ConfigureAwait(false);
        }
        if (state == "rejected")
        {
            await Console.Out.WriteLineAsync($"{file}: rejected by the control plane; fix the errors above (the last good version keeps serving)").ConfigureAwait(false);
            return;
        }
        if (state != "loaded")
        {
            await Console.Out.WriteLineAsync($"{file}: the control plane has not read this version of the file yet").ConfigureAwait(false);
            return;
        }
        var proxies = report.GetProperty("Proxies").EnumerateArray()
            .Select(p => (Id: p.GetProperty("Id").GetString(), State: p.GetProperty("State").GetString(), Detail: p.GetProperty("Detail").ValueKind == JsonValueKind.String ? p.GetProperty("Detail").GetString() : null))
            .Where(p => p.State != "unaffected").ToList();
        var applied = proxies.Count(p => p.State == "applied");
        await Console.Out.WriteLineAsync($"{file}: applied to {applied} of {proxies.Count} proxies{(timedOut ? " (timed out)" : "")}").ConfigureAwait(false);
        foreach (var (id, proxyState, detail) in proxies.Where(p => p.State != "applied"))
        {
            await Console.Out.WriteLineAsync($"  {id}: {proxyState}{(detail is null ? "" : ": " + detail)}").ConfigureAwait(false);
        }
    }

    private static TimeSpan ParseTimeout(System.CommandLine.Parsing.ArgumentResult result)
    {
        var text = result.Tokens.Single().Value;
        if (text.EndsWith('s') && double.TryParse(text[..^1], System.Globalization.CultureInfo.InvariantCulture, out var seconds) && seconds > 0)
        {
            return TimeSpan.FromSeconds(seconds);
        }
        if (text.EndsWith('m') && double.TryParse(text[..^1], System.Globalization.CultureInfo.InvariantCulture, out var minutes) && minutes > 0)
        {
            return TimeSpan.FromMinutes(minutes);
        }
        if (TimeSpan.TryParse(text, System.Globalization.CultureInfo.InvariantCulture, out var span) && span > TimeSpan.Zero)
        {
            return span;
        }
        result.AddError($"--timeout {text}: give a duration such as 30s, 2m or 00:01:00");
        return default;
    }
}
