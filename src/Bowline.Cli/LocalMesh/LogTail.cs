namespace Bowline.Cli.LocalMesh;

/// <summary>The last lines of a child's log, printed when it fails to start so the cause is on screen.</summary>
internal static class LogTail
{
    /// <summary>Starts the line <see cref="ChildProcess"/> writes before each start; logs are appended across runs.</summary>
    public const string StartMarker = "==== bowline up ";

    public static string Read(string logFile, int lines = 15)
    {
        try
        {
            using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var tail = new Queue<string>(lines);
            while (reader.ReadLine() is { } line)
            {
                if (line.StartsWith(StartMarker, StringComparison.Ordinal))
                {
                    // Only the latest run explains the failure at hand.
                    tail.Clear();
                }
                if (tail.Count == lines)
                {
                    tail.Dequeue();
                }
                tail.Enqueue(line);
            }
            return string.Join(Environment.NewLine, tail.Select(l => "    " + l));
        }
        catch (IOException)
        {
            return "";
        }
    }
}
