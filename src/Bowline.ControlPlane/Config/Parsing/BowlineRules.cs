namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>Value rules shared by Bowline's own kinds (<c>bowline.dev/v1alpha1</c>).</summary>
internal static class BowlineRules
{
    /// <summary>The required <c>host</c> of a kind that applies to one service: a DNS name, no wildcard.</summary>
    public static string? ServiceHost(FieldReader spec)
    {
        var host = spec.String("host", required: true);
        if (host is null)
        {
            return null;
        }
        if (host.Contains('*', StringComparison.Ordinal))
        {
            spec.Error("host", $"'{host}' is a wildcard; name one service (reviews, or reviews.default.svc.cluster.local) and write one resource per service");
            return null;
        }
        if (IstioRules.Fqdn(host) is { } problem)
        {
            spec.Error("host", problem);
            return null;
        }
        return host;
    }
}
