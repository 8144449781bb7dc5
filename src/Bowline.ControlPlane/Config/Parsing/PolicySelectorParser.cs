namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// <c>selector.matchLabels</c> of an Istio security policy with the CRD's rules (validateWorkloadSelector): non-empty
/// keys, no wildcards, values of at most 63 characters, at most 4096 labels.
/// </summary>
internal static class PolicySelectorParser
{
    private const int MaxLabels = 4096;
    private const int MaxLabelValueLength = 63;

    /// <summary>The selector's labels; empty when there is none (or it has no labels, which selects the whole namespace).</summary>
    public static IReadOnlyDictionary<string, string> Selector(FieldReader spec)
    {
        if (spec.Map("selector") is not { } selector)
        {
            return new Dictionary<string, string>();
        }
        var labels = selector.StringMap("matchLabels");
        selector.Finish();
        if (labels.Count > MaxLabels)
        {
            selector.Error("matchLabels", $"{labels.Count} labels are too many; at most {MaxLabels}");
        }
        foreach (var (key, value) in labels)
        {
            if (key.Length == 0)
            {
                selector.Error("matchLabels", "a label key must not be empty");
            }
            else if (key.Contains('*', StringComparison.Ordinal))
            {
                selector.Error("matchLabels", $"'{key}': wildcards are not allowed in a selector's label keys");
            }
            if (value.Contains('*', StringComparison.Ordinal))
            {
                selector.Error("matchLabels", $"'{key}: {value}': wildcards are not allowed in a selector's label values");
            }
            else if (value.Length > MaxLabelValueLength)
            {
                selector.Error("matchLabels", $"the value of label '{key}' is {value.Length} characters long; at most {MaxLabelValueLength}");
            }
        }
        if (labels.Count == 0)
        {
            spec.Warning("selector", "the selector has no labels, so it selects every workload of the namespace: this is a namespace-wide policy (as if the selector were absent)");
        }
        return labels;
    }
}
