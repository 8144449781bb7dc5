using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Listener.V3;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// The server side of mesh mTLS on a sidecar's <c>virtualInbound</c>, as Istio builds an HTTP inbound port
/// (pilot/pkg/networking/core/filterchain_options.go): per port, by the workload's effective PeerAuthentication, a
/// TLS chain (STRICT), a TLS chain for Istio's ALPNs and a plaintext chain (PERMISSIVE), or the plaintext chain
/// (DISABLE). The TLS inspector tells the chains apart.
/// </summary>
internal static class InboundMtls
{
    public const string TlsTransport = "tls";
    public const string PlaintextTransport = "raw_buffer";

    /// <summary>The sidecar's effective policy; policies that lose or have no effect on it are translation warnings.</summary>
    public static EffectivePeerAuthentication Resolve(ProxyNode node, ServiceIndex index, SnapshotBuilder snapshot)
    {
        var peer = index.Config.PeerAuthentication.ForWorkload(node.Namespace, node.Labels);
        foreach (var shadowed in peer.Shadowed)
        {
            snapshot.Warn($"{shadowed.Meta} ({shadowed.Meta.File}) has no effect on workload {node.Name}.{node.Namespace}: {peer.Workload!.Meta} also selects it and is older (or as old and first by name), and Istio applies only the oldest; merge the two");
        }
        if (peer.Workload is { } workload)
        {
            foreach (var port in workload.PortLevel.Keys.Where(p => node.InboundPorts.All(i => i.ContainerPort != p)).Order())
            {
                snapshot.Warn($"{workload.Meta} ({workload.Meta.File}): portLevelMtls port {port} is not an inbound port of workload {node.Name}.{node.Namespace} ({string.Join(", ", node.InboundPorts.Select(i => i.ContainerPort))}); it has no effect there");
            }
        }
        return peer;
    }

    /// <summary>The chains of one inbound port, each with its own copy of <paramref name="filters"/>; the TLS chain first, as Istio orders them.</summary>
    /// <param name="filters">The port's network filters: its HTTP connection manager, or a TCP port's network RBAC and tcp_proxy.</param>
    /// <param name="opaque">
    /// A TCP port: in PERMISSIVE mode TLS that is not mesh mTLS (a client without a sidecar speaking the app's own TLS)
    /// is forwarded untouched to the app, as Istio's inbound TCP chains do; on an HTTP port it finds no chain.
    /// </param>
    public static IEnumerable<FilterChain> Chains(string name, int listenPort, IReadOnlyList<Filter> filters, MutualTlsMode mode, string trustDomain, bool opaque)
    {
        if (mode is MutualTlsMode.Strict or MutualTlsMode.Permissive)
        {
            var match = new FilterChainMatch { DestinationPort = (uint)listenPort, TransportProtocol = TlsTransport };
            if (mode == MutualTlsMode.Permissive)
            {
                // Only mesh clients' TLS terminates here.
                match.ApplicationProtocols.AddRange(TlsContexts.IstioMtlsAlpns);
            }
            yield return new FilterChain
            {
                Name = name,
                FilterChainMatch = match,
                Filters = { filters.Select(f => f.Clone()) },
                TransportSocket = TlsContexts.Tls(TlsContexts.InboundMutualTls(trustDomain)),
            };
        }
        if (mode == MutualTlsMode.Permissive && opaque)
        {
            yield return new FilterChain
            {
                Name = name,
                FilterChainMatch = new FilterChainMatch { DestinationPort = (uint)listenPort, TransportProtocol = TlsTransport },
                Filters = { filters.Select(f => f.Clone()) },
            };
        }
        if (mode is MutualTlsMode.Permissive or MutualTlsMode.Disable)
        {
            yield return new FilterChain
            {
                Name = name,
                FilterChainMatch = new FilterChainMatch { DestinationPort = (uint)listenPort, TransportProtocol = PlaintextTransport },
                Filters = { filters.Select(f => f.Clone()) },
            };
        }
    }
}
