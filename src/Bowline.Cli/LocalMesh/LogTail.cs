namespace Bowline.Cli.LocalMesh;

/// <summary>The last lines of a child's log, printed when it fails to start so the cause is on screen.</summary>
internal static class LogTail
{
    public static string Read(string logFile, int lines = 15)
    {
        try
        {
            using var stream = new FileStream(logFile, FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
            using var reader = new StreamReader(stream);
            var tail = new Queue<string>(lines);
            while (reader.ReadLine() is { } line)
            {
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
