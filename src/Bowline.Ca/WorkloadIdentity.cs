namespace Bowline.Ca;

/// <summary>
/// Who a workload is: its namespace and service account, the two parts of a SPIFFE ID
/// <c>spiffe://&lt;trust-domain&gt;/ns/&lt;namespace&gt;/sa/&lt;service-account&gt;</c>. The trust domain is the CA's.
/// </summary>
public sealed record WorkloadIdentity
{
    public WorkloadIdentity(string @namespace, string serviceAccount)
    {
        Namespace = Validate(@namespace, nameof(@namespace));
        ServiceAccount = Validate(serviceAccount, nameof(serviceAccount));
    }

    public string Namespace { get; }

    public string ServiceAccount { get; }

    /// <summary>The SPIFFE ID of this identity in <paramref name="trustDomain"/>.</summary>
    public string SpiffeId(string trustDomain) => $"spiffe://{trustDomain}/ns/{Namespace}/sa/{ServiceAccount}";

    public override string ToString() => $"ns/{Namespace}/sa/{ServiceAccount}";

    /// <summary>SPIFFE path segments: letters, digits, <c>.</c>, <c>-</c>, <c>_</c>, and not <c>.</c> or <c>..</c>.</summary>
    internal static bool IsValidSegment(string value) =>
        value.Length is > 0 and <= 253 && value is not ("." or "..") && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_');

    private static string Validate(string value, string name)
    {
        ArgumentNullException.ThrowIfNull(value, name);
        return IsValidSegment(value)
            ? value
            : throw new ArgumentException($"'{value}' is not a valid SPIFFE path segment (letters, digits, '.', '-', '_'; at most 253 characters)", name);
    }
}
