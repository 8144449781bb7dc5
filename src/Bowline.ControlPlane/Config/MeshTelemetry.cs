namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>meshConfig.accessLogEncoding</c>.</summary>
public enum AccessLogEncoding
{
    /// <summary>Envoy's text format: Istio's default format, or <c>accessLogFormat</c>.</summary>
    Text,

    /// <summary>One JSON object per line with Istio's default keys, or <c>accessLogFormat</c>'s JSON object.</summary>
    Json,
}

/// <summary>
/// Istio's mesh-wide access log settings (<c>meshConfig.accessLogFile</c>, <c>accessLogEncoding</c>,
/// <c>accessLogFormat</c>): with a file, every sidecar and gateway HTTP connection manager logs each request there.
/// </summary>
/// <param name="AccessLogFile">Where proxies write (<c>/dev/stdout</c> is Istio's usual choice); null: no access log.</param>
/// <param name="Format">A custom format: Envoy's format string for TEXT, a JSON object of key to format string for JSON; null: Istio's.</param>
internal sealed record MeshTelemetry(string? AccessLogFile, AccessLogEncoding Encoding = AccessLogEncoding.Text, string? Format = null)
{
    public static readonly MeshTelemetry Off = new((string?)null);
}
