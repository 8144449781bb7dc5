namespace Bowline.Proxy.Clusters.LoadBalancing;

internal sealed class RoundRobinBalancer : ILoadBalancer
{
    private uint _next;

    public string Name => LoadBalancers.RoundRobin;

    public UpstreamEndpoint? Pick(HostSet hosts, ulong? hash, int attempt, ulong excludedLevels = 0)
    {
        var available = hosts.Choose(excludedLevels);
        return available.Length == 0 ? null : available[(int)(Interlocked.Increment(ref _next) % (uint)available.Length)];
    }
}
