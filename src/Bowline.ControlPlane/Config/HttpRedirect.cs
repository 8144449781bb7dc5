namespace Bowline.ControlPlane.Config;

/// <summary>How a redirect picks its port when no fixed port is given.</summary>
internal enum RedirectDerivePort
{
    /// <summary>Envoy's default: no port in the location, so the scheme's default applies.</summary>
    FromProtocolDefault,

    /// <summary>The port the request arrived on (the listener's port).</summary>
    FromRequestPort,
}

/// <summary>Istio's <c>HTTPRedirect</c>.</summary>
/// <param name="Code">The 3xx status; Istio's default is 301.</param>
internal sealed record HttpRedirect(string? Uri, string? PrefixRewrite, string? Authority, string? Scheme, int? Port, RedirectDerivePort? DerivePort, int Code);

/// <summary>Istio's <c>HTTPDirectResponse</c>: a fixed answer from the proxy.</summary>
internal sealed record HttpDirectResponse(int Status, string? BodyString, byte[]? BodyBytes);

/// <summary>Istio's <c>RegexRewrite</c>: every match of <paramref name="Match"/> in the path becomes <paramref name="Rewrite"/>.</summary>
internal sealed record RegexRewrite(string Match, string Rewrite);

/// <summary>Istio's <c>HTTPRewrite</c>.</summary>
internal sealed record HttpRewrite(string? Uri, RegexRewrite? UriRegex, string? Authority);

/// <summary>A root route's reference to a delegate VirtualService.</summary>
internal sealed record DelegateReference(string Name, string? Namespace);
