namespace Bowline.Cli.LocalMesh;

/// <summary>
/// <c>status.json</c>: what one <c>bowline up</c> runs where. Written by <c>up</c> whenever a pid changes and read by
/// <c>bowline status</c>, which fills in the <c>Alive</c> fields (null, so omitted, in the file).
/// </summary>
/// <param name="Pid">The <c>bowline up</c> process itself.</param>
internal sealed record MeshStatus(
    string Dir,
    string StateDir,
    string Logs,
    int Pid,
    ControlPlaneStatus ControlPlane,
    IngressStatus Ingress,
    IReadOnlyList<WorkloadStatus> Workloads,
    bool? Alive = null);

internal sealed record ControlPlaneStatus(int? Pid, string Xds, string Monitoring, bool? Alive = null);

internal sealed record IngressStatus(string Url, int? Pid, string Admin, bool? Alive = null);

/// <param name="Restarts">Restarts of the app and the sidecar together.</param>
/// <param name="State"><c>running</c>, or <c>restarting</c> while the app or the sidecar is down.</param>
internal sealed record WorkloadStatus(
    string Name,
    string Namespace,
    IReadOnlyDictionary<string, string> Labels,
    AppStatus App,
    SidecarStatus Sidecar,
    int Restarts,
    string State);

/// <param name="Ports">Container port to the loopback port the app listens on.</param>
internal sealed record AppStatus(int? Pid, IReadOnlyDictionary<string, int> Ports, bool? Alive = null);

/// <param name="InboundPorts">Container port to the loopback port the sidecar accepts inbound traffic on.</param>
internal sealed record SidecarStatus(int? Pid, IReadOnlyDictionary<string, int> InboundPorts, int OutboundPort, string Admin, bool? Alive = null);
