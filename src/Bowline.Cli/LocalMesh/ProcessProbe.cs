using System.Diagnostics;

namespace Bowline.Cli.LocalMesh;

/// <summary>Whether a pid from status.json still names a running process.</summary>
internal static class ProcessProbe
{
    public static bool IsAlive(int? pid)
    {
        if (pid is not { } id || id <= 0)
        {
            return false;
        }
        try
        {
            using var process = Process.GetProcessById(id);
            return !process.HasExited;
        }
        catch (Exception e) when (e is ArgumentException or InvalidOperationException)
        {
            return false;
        }
    }
}
