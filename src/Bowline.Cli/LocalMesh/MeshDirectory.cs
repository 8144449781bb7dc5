using Bowline.ControlPlane.Config;

namespace Bowline.Cli.LocalMesh;

/// <summary>The resources of a mesh directory that <c>bowline up</c> needs to lay out processes.</summary>
internal sealed record MeshDirectory(
    string Path,
    IReadOnlyList<Workload> Workloads,
    IReadOnlyList<KubernetesService> Services,
    IReadOnlyList<Gateway> Gateways,
    IReadOnlyList<VirtualService> VirtualServices)
{
    /// <summary>
    /// Parses every top-level <c>*.yaml</c>/<c>*.yml</c> file, as the control plane's directory source does (not
    /// recursive, dot files skipped), and writes each diagnostic to <paramref name="diagnostics"/>.
    /// </summary>
    public static MeshDirectory Load(string directory, TextWriter diagnostics)
    {
        var resources = new List<MeshResource>();
        foreach (var file in System.IO.Directory.EnumerateFiles(directory).Where(IsConfigFile).Order(StringComparer.Ordinal))
        {
            var parsed = ConfigFileParser.Parse(file, File.ReadAllText(file));
            foreach (var diagnostic in parsed.Diagnostics)
            {
                diagnostics.WriteLine(diagnostic.ToString());
            }
            resources.AddRange(parsed.Resources);
        }
        return new MeshDirectory(
            directory,
            resources.OfType<Workload>().ToList(),
            resources.OfType<KubernetesService>().ToList(),
            resources.OfType<Gateway>().ToList(),
            resources.OfType<VirtualService>().ToList());
    }

    /// <summary>The directory a Workload's relative paths (project, workingDir, command) are resolved against.</summary>
    public static string BaseDirectoryOf(Workload workload) =>
        System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(workload.Meta.File))!;

    private static bool IsConfigFile(string path) =>
        (path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
        && !System.IO.Path.GetFileName(path).StartsWith('.');
}
