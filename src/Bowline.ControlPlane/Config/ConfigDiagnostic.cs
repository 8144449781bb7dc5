namespace Bowline.ControlPlane.Config;

internal enum DiagnosticSeverity
{
    /// <summary>The resource is accepted, but part of it has no effect in Bowline yet; the message says which part.</summary>
    Warning,

    /// <summary>The resource (or the whole file, for a YAML syntax error) is rejected; the last good version keeps serving.</summary>
    Error,
}

/// <summary>One finding about a config file: where (file, line, resource, field), what is wrong, and how to fix it.</summary>
internal sealed record ConfigDiagnostic(DiagnosticSeverity Severity, string File, int Line, string? Resource, string? Field, string Message)
{
    public override string ToString()
    {
        var where = Line > 0 ? $"{File}:{Line}" : File;
        var what = Resource is null ? "" : $" {Resource}";
        var field = Field is null ? "" : $" field {Field}";
        return $"{Severity.ToString().ToLowerInvariant()}: {where}:{what}{field}: {Message}";
    }
}
