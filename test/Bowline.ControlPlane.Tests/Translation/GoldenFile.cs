namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>
/// Golden files under <c>Translation/Golden/</c>, copied next to the test assembly. To accept a deliberate change of
/// translation output, run the tests with <c>BOWLINE_UPDATE_GOLDEN=1</c>: every golden test then writes its file into the
/// source tree instead of comparing (and passes); review the diff before committing it.
/// </summary>
internal static class GoldenFile
{
    public static bool Updating => Environment.GetEnvironmentVariable("BOWLINE_UPDATE_GOLDEN") == "1";

    public static void Verify(string name, string actual)
    {
        if (Updating)
        {
            var directory = Path.Combine(ProjectDirectory(), "Translation", "Golden");
            Directory.CreateDirectory(directory);
            File.WriteAllText(Path.Combine(directory, name), actual);
            return;
        }
        var path = Path.Combine(AppContext.BaseDirectory, "Translation", "Golden", name);
        Assert.True(File.Exists(path), $"golden file {name} does not exist; run the tests once with BOWLINE_UPDATE_GOLDEN=1 to create it");
        var expected = File.ReadAllText(path).ReplaceLineEndings("\n");
        if (expected != actual)
        {
            // Left beside the expected file so `diff` shows the change.
            File.WriteAllText(Path.ChangeExtension(path, ".actual.json"), actual);
        }
        Assert.Equal(expected, actual);
    }

    /// <summary>The test project's source directory: the first parent of the test assembly holding its project file.</summary>
    private static string ProjectDirectory()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Bowline.ControlPlane.Tests.csproj")))
            {
                return dir.FullName;
            }
        }
        throw new InvalidOperationException($"no Bowline.ControlPlane.Tests.csproj above {AppContext.BaseDirectory}");
    }
}
