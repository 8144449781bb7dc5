namespace Bowline.Cli.LocalMesh;

/// <summary>Where proxies reach the control plane: its TLS xDS and CA port, and the mesh root they verify it by.</summary>
internal sealed record ControlPlaneEndpoint(Uri Address, string RootFile)
{
    /// <summary>The <c>bowline proxy</c> arguments that point a sidecar or gateway here (loopback: the local mesh runs on one machine).</summary>
    public IEnumerable<string> ProxyArguments() => ["--xds", $"https://127.0.0.1:{Address.Port}", "--ca-root-file", RootFile];
}
