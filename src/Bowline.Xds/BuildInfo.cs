using System.Globalization;

namespace Bowline.Xds;

/// <summary>
/// The build every component reports as Istio's <c>istio_build{component, tag}</c> gauge, which the mesh dashboard's
/// "Istio Component Versions" panel sums by component and tag. One tag for the control plane and the sidecars, so a
/// half-rolled upgrade shows as two rows.
/// </summary>
public static class BuildInfo
{
    public static readonly string Tag = "bowline-" + (typeof(BuildInfo).Assembly.GetName().Version?.ToString(3) ?? "0");

    /// <summary>The gauge in Prometheus's text format, for <paramref name="component"/> (<c>pilot</c>, <c>proxy</c>).</summary>
    public static string IstioBuildMetric(string component) => string.Create(CultureInfo.InvariantCulture,
        $"# HELP istio_build Istio component build info\n# TYPE istio_build gauge\nistio_build{{component=\"{component}\",tag=\"{Tag}\"}} 1\n");
}
