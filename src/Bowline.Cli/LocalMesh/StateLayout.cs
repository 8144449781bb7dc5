namespace Bowline.Cli.LocalMesh;

/// <summary>The state directory of one <c>bowline up</c>: <c>logs/</c>, <c>registry/</c>, <c>build/</c> and <c>status.json</c>.</summary>
internal sealed record StateLayout(string Root)
{
    public string Logs => Path.Combine(Root, "logs");

    /// <summary>The file-backed registry: one WorkloadEntry per running workload, watched by the control plane.</summary>
    public string Registry => Path.Combine(Root, "registry");

    public string Build => Path.Combine(Root, "build");

    public string StatusFile => Path.Combine(Root, "status.json");

    public string LogFile(string name) => Path.Combine(Logs, name);

    public void Create()
    {
        Directory.CreateDirectory(Logs);
        Directory.CreateDirectory(Registry);
        Directory.CreateDirectory(Build);
    }
}
