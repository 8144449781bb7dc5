namespace Bowline.Proxy.Clusters;

/// <summary>
/// One upstream host of a cluster. Its identity (address, port) is immutable; the count of active requests is live
/// state that survives config updates (the compiler reuses the instance), so least-request stays accurate across pushes.
/// </summary>
internal sealed class UpstreamEndpoint(string address, int port)
{
    private int _activeRequests;

    public string Address { get; } = address;

    public int Port { get; } = port;

    /// <summary>The forwarding prefix, built once: <c>http://127.0.0.1:41000</c>.</summary>
    public string Prefix { get; } = $"http://{(address.Contains(':', StringComparison.Ordinal) ? $"[{address}]" : address)}:{port}";

    public int ActiveRequests => Volatile.Read(ref _activeRequests);

    public void RequestStarted() => Interlocked.Increment(ref _activeRequests);

    public void RequestEnded() => Interlocked.Decrement(ref _activeRequests);

    public override string ToString() => $"{Address}:{Port}";
}

/// <summary>An endpoint as a cluster's current assignment has it: the shared live endpoint, its weight and health.</summary>
internal sealed record WeightedEndpoint(UpstreamEndpoint Endpoint, int Weight, bool Healthy);
