namespace Bowline.Cli.LocalMesh;

/// <summary>This same executable, so the control plane, sidecars and gateway run the exact build that runs <c>up</c>.</summary>
internal sealed record BowlineExecutable(string FileName, IReadOnlyList<string> PrefixArguments)
{
    public static BowlineExecutable Current()
    {
        var path = Environment.ProcessPath ?? throw new InvalidOperationException("the path of the running executable is unknown");
        // Run as `dotnet bowline.dll`: the host is dotnet, and the assembly must be named again.
        return IsDotnetHost(path)
            ? new BowlineExecutable(path, [typeof(BowlineExecutable).Assembly.Location])
            : new BowlineExecutable(path, []);
    }

    /// <summary>
    /// Set to the Native AOT sidecar (<c>dotnet publish src/Bowline.Sidecar</c>) to run every sidecar and the gateway
    /// with it instead of <c>bowline proxy</c>: the same command, half the memory at idle.
    /// </summary>
    public const string ProxyBinaryVariable = "BOWLINE_PROXY";

    public LaunchSpec Launch(IReadOnlyList<string> arguments, string workingDirectory, string logFile)
    {
        if (arguments is ["proxy", ..] && Environment.GetEnvironmentVariable(ProxyBinaryVariable) is { Length: > 0 } proxy)
        {
            return new LaunchSpec(Path.GetFullPath(proxy), [.. arguments.Skip(1)], workingDirectory, new Dictionary<string, string?>(), logFile);
        }
        return new LaunchSpec(FileName, [.. PrefixArguments, .. arguments], workingDirectory, new Dictionary<string, string?>(), logFile);
    }

    /// <summary>The dotnet host, for <c>dotnet build</c> and for running framework-dependent workloads.</summary>
    public static string DotnetHost() =>
        Environment.ProcessPath is { } path && IsDotnetHost(path) ? path : "dotnet";

    private static bool IsDotnetHost(string path) =>
        Path.GetFileNameWithoutExtension(path).Equals("dotnet", StringComparison.OrdinalIgnoreCase);
}
