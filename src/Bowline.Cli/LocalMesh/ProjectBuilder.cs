using Bowline.ControlPlane.Config;

namespace Bowline.Cli.LocalMesh;

/// <summary>Builds each distinct .NET project of the Workloads once, sequentially, into <c>state/build/&lt;project&gt;</c>.</summary>
internal sealed class ProjectBuilder(StateLayout state, TimeProvider time, TextWriter output)
{
    /// <summary>The absolute path of a Workload's project, which is relative to the YAML file that declares it.</summary>
    public static string ProjectPath(Workload workload, string project) =>
        Path.GetFullPath(Path.Combine(MeshDirectory.BaseDirectoryOf(workload), project));

    /// <returns>Project path to its dll; null when a build failed (its output is already printed).</returns>
    public async Task<IReadOnlyDictionary<string, string>?> BuildAsync(IReadOnlyList<Workload> workloads, bool noBuild, CancellationToken cancellationToken)
    {
        var projects = workloads.Where(w => w.Project is not null).Select(w => ProjectPath(w, w.Project!)).Distinct(StringComparer.Ordinal).ToList();
        var programs = new Dictionary<string, string>(StringComparer.Ordinal);
        var outputNames = new HashSet<string>(StringComparer.Ordinal);
        foreach (var project in projects)
        {
            if (!File.Exists(project))
            {
                await output.WriteLineAsync($"bowline up: project {project} does not exist (the workload's project is relative to its YAML file)").ConfigureAwait(false);
                return null;
            }
            var outputDirectory = Path.Combine(state.Build, UniqueName(Path.GetFileNameWithoutExtension(project), outputNames));
            var started = time.GetTimestamp();
            if (!noBuild)
            {
                var build = await CapturedCommand.RunAsync(
                    BowlineExecutable.DotnetHost(),
                    ["build", project, "-c", "Release", "-o", outputDirectory, "--nologo", "-v", "q"],
                    cancellationToken).ConfigureAwait(false);
                if (build.ExitCode != 0)
                {
                    await output.WriteLineAsync($"bowline up: building {Relative(project)} failed (exit code {build.ExitCode}):").ConfigureAwait(false);
                    await output.WriteLineAsync(build.Output).ConfigureAwait(false);
                    return null;
                }
            }
            // Ask MSBuild rather than guess: AssemblyName often differs from the project file name (Bookinfo.csproj builds bookinfo.dll).
            var name = await CapturedCommand.RunAsync(
                BowlineExecutable.DotnetHost(), ["msbuild", project, "-getProperty:TargetFileName", "-p:Configuration=Release", "-nologo"], cancellationToken).ConfigureAwait(false);
            var dll = Path.Combine(outputDirectory, name.Output.Trim());
            if (name.ExitCode != 0 || !File.Exists(dll))
            {
                await output.WriteLineAsync($"bowline up: no program for {Relative(project)} at {dll}{(noBuild ? "; run without --no-build first" : "")}").ConfigureAwait(false);
                await output.WriteLineAsync(name.Output).ConfigureAwait(false);
                return null;
            }
            var verb = noBuild ? "using" : "built";
            await output.WriteLineAsync($"{verb} {Relative(project)} -> {dll} ({time.GetElapsedTime(started).TotalSeconds:0.0} s)").ConfigureAwait(false);
            programs[project] = dll;
        }
        return programs;
    }

    private static string UniqueName(string name, HashSet<string> taken)
    {
        var candidate = name;
        for (var i = 2; !taken.Add(candidate); i++)
        {
            candidate = $"{name}-{i}";
        }
        return candidate;
    }

    private static string Relative(string path) => Path.GetRelativePath(Environment.CurrentDirectory, path);
}
