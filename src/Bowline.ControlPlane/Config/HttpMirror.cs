namespace Bowline.ControlPlane.Config;

/// <summary>One mirror destination of a route.</summary>
/// <param name="Percent">Share of requests copied, 0-100; null: Istio's default, every request; 0: none.</param>
internal sealed record HttpMirror(string Host, string? Subset, int? Port, double? Percent);
