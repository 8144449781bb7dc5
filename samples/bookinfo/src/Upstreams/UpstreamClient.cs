namespace Bowline.Samples.Bookinfo.Upstreams;

/// <summary>Makes the GET calls between bookinfo services, with the application timeouts
/// Istio's tasks depend on. Thread-safe; one instance per process.</summary>
internal sealed partial class UpstreamClient(HttpClient http, ILogger<UpstreamClient> logger)
{
    /// <summary>GETs <paramref name="url"/>, giving up after <paramref name="timeout"/>
    /// (connect, headers and body together). Never throws for a failed call: a refused
    /// connection, a timeout or a bad response yields <see cref="UpstreamResponse.NoResponse"/>
    /// or the status that came back, and a warning line.</summary>
    public async Task<UpstreamResponse> GetAsync(
        Uri url, OutgoingHeaders headers, TimeSpan timeout, CancellationToken cancellationToken)
    {
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        deadline.CancelAfter(timeout);

        using var request = new HttpRequestMessage(HttpMethod.Get, url);
        headers.ApplyTo(request);

        try
        {
            using HttpResponseMessage response = await http.SendAsync(request, deadline.Token);
            string body = await response.Content.ReadAsStringAsync(deadline.Token);
            int status = (int)response.StatusCode;
            if (status != 200)
            {
                Log.NotOk(logger, url, status);
            }

            return new UpstreamResponse(status, body);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            Log.TimedOut(logger, url, timeout.TotalSeconds);
            return UpstreamResponse.NoResponse;
        }
        catch (HttpRequestException e)
        {
            Log.Failed(logger, url, e.Message);
            return UpstreamResponse.NoResponse;
        }
    }

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "GET {Url} returned {Status}")]
        public static partial void NotOk(ILogger logger, Uri url, int status);

        [LoggerMessage(Level = LogLevel.Warning, Message = "GET {Url} timed out after {Seconds} s")]
        public static partial void TimedOut(ILogger logger, Uri url, double seconds);

        [LoggerMessage(Level = LogLevel.Warning, Message = "GET {Url} failed: {Reason}")]
        public static partial void Failed(ILogger logger, Uri url, string reason);
    }
}
