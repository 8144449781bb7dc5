using YamlDotNet.RepresentationModel;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Collects the diagnostics of one file, each tagged with the resource being read.</summary>
internal sealed class ParseContext(string file)
{
    private readonly List<ConfigDiagnostic> _diagnostics = [];

    public string File { get; } = file;

    /// <summary>The resource being read (<c>VirtualService default/reviews</c>), for messages.</summary>
    public string? Resource { get; set; }

    public IReadOnlyList<ConfigDiagnostic> Diagnostics => _diagnostics;

    public int ErrorCount { get; private set; }

    /// <summary>Lines before the YAML being read, when it is embedded in a string of the file (a ConfigMap's <c>data.mesh</c>).</summary>
    public int LineOffset { get; set; }

    public void Error(YamlNode node, string field, string message)
    {
        ErrorCount++;
        _diagnostics.Add(new ConfigDiagnostic(DiagnosticSeverity.Error, File, (int)node.Start.Line + LineOffset, Resource, field, message));
    }

    public void Warning(YamlNode node, string field, string message) =>
        _diagnostics.Add(new ConfigDiagnostic(DiagnosticSeverity.Warning, File, (int)node.Start.Line + LineOffset, Resource, field, message));

    public void FileError(int line, string message)
    {
        ErrorCount++;
        _diagnostics.Add(new ConfigDiagnostic(DiagnosticSeverity.Error, File, line, Resource, null, message));
    }
}
