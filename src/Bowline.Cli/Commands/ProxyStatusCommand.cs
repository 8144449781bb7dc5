using System.CommandLine;
using System.Text.Json;

namespace Bowline.Cli.Commands;

/// <summary>
/// <c>bowline proxy-status</c>: every connected proxy, its workload, and per xDS type whether it has what the control
/// plane last sent (SYNCED), has not answered it yet (STALE), or rejected it (NACKED, with the reason), as
/// <c>istioctl proxy-status</c> shows them.
/// </summary>
internal static class ProxyStatusCommand
{
    private static readonly string[] Types = ["CDS", "LDS", "EDS", "RDS", "SDS"];

    public static Command Create()
    {
        var address = MeshApi.AddressOption();
        var output = MeshApi.OutputOption();
        var command = new Command("proxy-status", "Show every proxy connected to the control plane and whether each xDS type is SYNCED, STALE or NACKED.") { address, output };
        command.SetAction(async (result, cancellationToken) =>
        {
            using var http = MeshApi.Client(result.GetValue(address)!);
            try
            {
                var (text, json) = await MeshApi.GetAsync(http, "/debug/connections", cancellationToken).ConfigureAwait(false);
                using (json)
                {
                    await Console.Out.WriteLineAsync(result.GetValue(output) == "json" ? text : Table(json.RootElement)).ConfigureAwait(false);
                    // A NACK is a failure an operator must see, in scripts too.
                    return json.RootElement.EnumerateArray().Any(p => Statuses(p).Any(s => s.Status == "NACKED")) ? 1 : 0;
                }
            }
            catch (MeshApiException e)
            {
                await Console.Error.WriteLineAsync($"bowline proxy-status: {e.Message}").ConfigureAwait(false);
                return 2;
            }
        });
        return command;
    }

    private static IEnumerable<(string Type, string Status, string? Reason)> Statuses(JsonElement proxy) =>
        proxy.GetProperty("types").EnumerateObject().Select(t => (t.Name, t.Value.GetProperty("status").GetString()!,
            t.Value.GetProperty("rejectReason").ValueKind == JsonValueKind.String ? t.Value.GetProperty("rejectReason").GetString() : null));

    private static string Table(JsonElement proxies)
    {
        var rows = new List<string[]> { (string[])["NAME", "WORKLOAD", "KIND", .. Types, "GENERATION"] };
        var reasons = new List<string>();
        foreach (var proxy in proxies.EnumerateArray())
        {
            var id = proxy.GetProperty("id").GetString()!;
            var statuses = Statuses(proxy).ToDictionary(s => s.Type, StringComparer.Ordinal);
            rows.Add([id, $"{proxy.GetProperty("name").GetString()}.{proxy.GetProperty("namespace").GetString()}", proxy.GetProperty("kind").GetString()!,
                .. Types.Select(t => statuses.TryGetValue(t, out var s) ? s.Status : "-"), proxy.GetProperty("generation").GetInt64().ToString(System.Globalization.CultureInfo.InvariantCulture)]);
            reasons.AddRange(statuses.Values.Where(s => s.Reason is not null).Select(s => $"{id} {s.Type} NACKED: {s.Reason}"));
        }
        if (rows.Count == 1)
        {
            return "no proxy is connected to the control plane";
        }
        var widths = Enumerable.Range(0, rows[0].Length).Select(i => rows.Max(r => r[i].Length)).ToArray();
        var lines = rows.Select(r => string.Join("  ", r.Select((cell, i) => cell.PadRight(widths[i]))).TrimEnd());
        return string.Join('\n', lines.Concat(reasons));
    }
}
