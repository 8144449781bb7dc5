namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>Where the repository and the built artifacts are, found from the test assembly's location.</summary>
internal static class RepoPaths
{
    public static string Root { get; } = FindRoot();

    public static string TestOutput => AppContext.BaseDirectory;

    private static string FindRoot()
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null && !File.Exists(Path.Combine(dir.FullName, "Bowline.slnx")))
        {
            dir = dir.Parent;
        }
        return dir?.FullName ?? throw new InvalidOperationException($"Bowline.slnx not found above {AppContext.BaseDirectory}");
    }
}
