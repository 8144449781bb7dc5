using System.Net;

namespace Bowline.Cli.LocalMesh;

/// <summary>What <c>bowline up</c> was asked to run.</summary>
/// <param name="Directory">The mesh directory: its top-level YAML holds Workloads, Services and Istio config (absolute).</param>
/// <param name="Ingress">Where the ingress gateway listens; port 0 picks a free one.</param>
/// <param name="XdsPort">The control plane's plaintext xDS port (loopback); 0 lets the control plane pick one.</param>
/// <param name="SecureXdsPort">The control plane's TLS xDS and CA port, which every sidecar and the gateway use; 0 lets the control plane pick one.</param>
/// <param name="MonitoringPort">The control plane's monitoring port; 0 lets the control plane pick one.</param>
/// <param name="StateDirectory">Logs, the file-backed registry and status.json (absolute).</param>
/// <param name="NoBuild">Run the last build output instead of building each project first.</param>
internal sealed record UpOptions(
    string Directory,
    IPEndPoint Ingress,
    int XdsPort,
    int SecureXdsPort,
    int MonitoringPort,
    string StateDirectory,
    bool NoBuild);
