using System.Text.Json;

namespace Bowline.Cli.LocalMesh;

/// <summary>Reads and writes <c>status.json</c>, and <c>~/.bowline/last-up</c>, which points <c>bowline status</c> at it.</summary>
internal static class StatusStore
{
    public static string LastUpFile =>
        Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".bowline", "last-up");

    /// <summary>Replaces the file in one rename, so a concurrent <c>bowline status</c> never reads half of it.</summary>
    public static void Write(string path, MeshStatus status)
    {
        var temporary = path + ".tmp";
        File.WriteAllText(temporary, JsonSerializer.Serialize(status, StatusJsonContext.Default.MeshStatus));
        File.Move(temporary, path, overwrite: true);
    }

    /// <returns>Null when there is no status file (nothing runs, or it stopped cleanly).</returns>
    public static MeshStatus? Read(string path)
    {
        try
        {
            return JsonSerializer.Deserialize(File.ReadAllText(path), StatusJsonContext.Default.MeshStatus);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            return null;
        }
    }

    public static string Serialize(MeshStatus status) => JsonSerializer.Serialize(status, StatusJsonContext.Default.MeshStatus);

    public static void RememberLastUp(string stateDirectory)
    {
        var file = LastUpFile;
        Directory.CreateDirectory(Path.GetDirectoryName(file)!);
        File.WriteAllText(file, stateDirectory + "\n");
    }

    /// <returns>The state directory of the last <c>bowline up</c>, or null.</returns>
    public static string? ReadLastUp() =>
        File.Exists(LastUpFile) ? File.ReadAllText(LastUpFile).Trim() is { Length: > 0 } path ? path : null : null;
}
