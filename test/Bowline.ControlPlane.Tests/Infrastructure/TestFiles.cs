using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Infrastructure;

/// <summary>The bookinfo sample config (copied next to the test assembly by the project file) and parsing helpers.</summary>
internal static class TestFiles
{
    public static string BookinfoDirectory => Path.Combine(AppContext.BaseDirectory, "Samples", "bookinfo");

    public static string Bookinfo(string file) => Path.Combine(BookinfoDirectory, file);

    /// <summary>Parses one YAML text and fails the test with the diagnostics if it has an error.</summary>
    public static IReadOnlyList<MeshResource> ParseValid(string file, string yaml)
    {
        var parsed = ConfigFileParser.Parse(file, yaml);
        Assert.False(parsed.HasErrors, string.Join("\n", parsed.Diagnostics));
        return parsed.Resources;
    }

    /// <summary>Parses bookinfo sample files (paths relative to the sample directory) into resources.</summary>
    public static IReadOnlyList<MeshResource> ParseBookinfo(params string[] files) =>
        files.SelectMany(f => ParseValid(f, File.ReadAllText(Bookinfo(f)))).ToList();
}
