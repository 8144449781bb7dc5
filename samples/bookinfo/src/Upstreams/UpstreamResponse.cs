namespace Bowline.Samples.Bookinfo.Upstreams;

/// <summary>What one outgoing call produced: a status and body, or nothing at all when the call
/// failed or timed out (<see cref="StatusCode"/> is null then).</summary>
internal readonly record struct UpstreamResponse(int? StatusCode, string? Body)
{
    public static UpstreamResponse NoResponse => new(null, null);

    public bool IsOk => StatusCode == 200 && Body is not null;
}
