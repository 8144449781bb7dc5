using System.Text;

namespace Bowline.Ca.Internal;

/// <summary>
/// Writes the CA's files. Each file is written beside its target and renamed over it, so a crash leaves the old or
/// the new content, never half of one. Secrets are created 0600 from the start (never chmod-ed after the fact, which
/// would leave a window in which another user could open them).
/// </summary>
internal static class SecureFiles
{
    private const UnixFileMode Private = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    private const UnixFileMode Public = Private | UnixFileMode.GroupRead | UnixFileMode.OtherRead;
    private const UnixFileMode PrivateDirectory = Private | UnixFileMode.UserExecute;

    public static void EnsureDirectory(string path)
    {
        if (OperatingSystem.IsWindows())
        {
            Directory.CreateDirectory(path);
        }
        else
        {
            Directory.CreateDirectory(path, PrivateDirectory);
        }
    }

    /// <summary>A key or token file: owner read/write only.</summary>
    public static void WritePrivate(string path, string contents) => Write(path, contents, Private);

    /// <summary>A certificate: anyone may read it.</summary>
    public static void WritePublic(string path, string contents) => Write(path, contents, Public);

    private static void Write(string path, string contents, UnixFileMode mode)
    {
        var temporary = path + ".tmp";
        File.Delete(temporary);
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = mode;
        }
        using (var stream = new FileStream(temporary, options))
        {
            stream.Write(Encoding.UTF8.GetBytes(contents));
            stream.Flush(flushToDisk: true);
        }
        File.Move(temporary, path, overwrite: true);
    }
}
