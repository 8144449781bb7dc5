namespace Bowline.Cli.LocalMesh;

/// <summary>How to start one child process; the same spec is used again for every restart.</summary>
/// <param name="Environment">Changes to the inherited environment: a null value removes the variable.</param>
/// <param name="LogFile">Where stdout and stderr are appended, across restarts.</param>
internal sealed record LaunchSpec(
    string FileName,
    IReadOnlyList<string> Arguments,
    string WorkingDirectory,
    IReadOnlyDictionary<string, string?> Environment,
    string LogFile)
{
    public string CommandLine => string.Join(' ', Arguments.Prepend(FileName).Select(Quote));

    private static string Quote(string value) =>
        value.Length > 0 && !value.Any(c => char.IsWhiteSpace(c) || c is '"' or '\'') ? value : $"'{value.Replace("'", "'\\''", StringComparison.Ordinal)}'";
}
