using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>The one assertion every table of Istio validation rules makes: an error on the named field (and nothing loaded), or none.</summary>
internal static class ValidationRows
{
    /// <summary>A resource of <paramref name="kind"/> named <c>reviews</c> (or <paramref name="name"/>) with <paramref name="spec"/> as its spec.</summary>
    public static string Resource(string apiVersion, string kind, string spec, string name = "reviews") =>
        $"apiVersion: {apiVersion}\nkind: {kind}\nmetadata:\n  name: {name}\nspec:\n" + Indent(spec, "  ");

    /// <summary>Parses <paramref name="yaml"/> and checks the row; returns the parse for any further assertions.</summary>
    public static ParsedFile Check(string file, string yaml, string rule, string? errorField, bool acceptedLoadsOne = true)
    {
        var parsed = ConfigFileParser.Parse(file, yaml);
        var errors = parsed.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).ToList();
        if (errorField is null)
        {
            Assert.True(errors.Count == 0, $"{rule}: {string.Join("\n", errors)}");
            if (acceptedLoadsOne)
            {
                Assert.Single(parsed.Resources);
            }
            return parsed;
        }
        Assert.True(errors.Any(e => e.Field == errorField), $"{rule}: expected an error on {errorField}, got:\n{string.Join("\n", parsed.Diagnostics)}");
        Assert.Empty(parsed.Resources);
        return parsed;
    }

    public static string Indent(string text, string prefix) => string.Join("\n", text.ReplaceLineEndings("\n").Split('\n').Select(l => prefix + l)) + "\n";
}
