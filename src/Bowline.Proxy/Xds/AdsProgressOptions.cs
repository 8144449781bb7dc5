namespace Bowline.Proxy.Xds;

/// <summary>
/// When the xDS client gives up on a stream that stopped making progress. Optional in DI: without a registration the
/// defaults apply.
/// </summary>
internal sealed class AdsProgressOptions
{
    public static readonly TimeSpan DefaultStallTimeout = TimeSpan.FromSeconds(60);

    /// <summary>
    /// How long a stream that owes the proxy a write or a response may go without delivering any response before it is
    /// reopened. Long enough for a control plane translating a very large mesh; short enough that a wedged stream is
    /// noticed within a minute.
    /// </summary>
    public TimeSpan StallTimeout { get; init; } = DefaultStallTimeout;
}
