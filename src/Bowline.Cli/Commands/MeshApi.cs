using System.Text.Json;

namespace Bowline.Cli.Commands;

/// <summary>The control plane's monitoring API (Istio's 15014), read by the commands that report on a running mesh.</summary>
internal static class MeshApi
{
    public const string DefaultAddress = "http://127.0.0.1:15014";

    public static System.CommandLine.Option<Uri> AddressOption() => new("--control-plane")
    {
        Description = $"The control plane's monitoring address. Default {DefaultAddress}.",
        DefaultValueFactory = _ => new Uri(DefaultAddress),
        CustomParser = result =>
        {
            var text = result.Tokens.Single().Value;
            if (Uri.TryCreate(text.Contains("://", StringComparison.Ordinal) ? text : "http://" + text, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https")
            {
                return uri;
            }
            result.AddError($"--control-plane {text}: give the monitoring address, such as {DefaultAddress} or 127.0.0.1:15014");
            return null;
        },
    };

    public static System.CommandLine.Option<string> OutputOption() => new("--output", "-o")
    {
        Description = "table (for people) or json (for machines).",
        DefaultValueFactory = _ => "table",
    };

    public static HttpClient Client(Uri address) =>
        new(new SocketsHttpHandler { UseProxy = false }) { BaseAddress = address, Timeout = TimeSpan.FromSeconds(10) };

    /// <summary>GETs a JSON document; a control plane that cannot be reached is an error naming the address and the fix.</summary>
    public static async Task<(string Text, JsonDocument Json)> GetAsync(HttpClient http, string path, CancellationToken cancellationToken)
    {
        try
        {
            var text = await http.GetStringAsync(new Uri(path, UriKind.Relative), cancellationToken).ConfigureAwait(false);
            return (text, JsonDocument.Parse(text));
        }
        catch (HttpRequestException e) when (e.StatusCode is { } status)
        {
            throw new MeshApiException($"the control plane at {http.BaseAddress} answered {(int)status} for {path}: is it a Bowline control plane of this version? Give --control-plane with its monitoring address");
        }
        catch (HttpRequestException e)
        {
            throw new MeshApiException($"cannot reach the control plane at {http.BaseAddress} ({e.Message}); is it running? Give --control-plane with its monitoring address");
        }
        catch (TaskCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // HttpClient's own timeout, not the caller's deadline: the control plane is up but did not answer.
            throw new MeshApiException($"the control plane at {http.BaseAddress} did not answer {path} within {http.Timeout.TotalSeconds:0} s; it may be busy translating a large change, try again");
        }
        catch (JsonException e)
        {
            throw new MeshApiException($"the control plane at {http.BaseAddress} answered {path} with something that is not JSON ({e.Message}); is --control-plane its monitoring port?");
        }
    }
}

internal sealed class MeshApiException(string message) : Exception(message);
