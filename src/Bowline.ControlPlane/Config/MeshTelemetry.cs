namespace Bowline.ControlPlane.Config;

/// <summary>Istio's <c>meshConfig.accessLogEncoding</c>.</summary>
public enum AccessLogEncoding
{
    /// <summary>Envoy's text format: Istio's default format, or <c>accessLogFormat</c>.</summary>
    Text,

    /// <summary>One JSON object per line with Istio's default keys, or <c>accessLogFormat</c>'s JSON object.</summary>
    Json,
}

/// <summary>Checks of an access log format shared by the command line and the mesh config.</summary>
public static class AccessLogFormats
{
    /// <summary>Whether a JSON-encoded format is what Envoy takes: a JSON object of key to format string.</summary>
    public static bool IsJsonObject(string format)
    {
        try
        {
            using var document = System.Text.Json.JsonDocument.Parse(format);
            return document.RootElement.ValueKind == System.Text.Json.JsonValueKind.Object
                && document.RootElement.EnumerateObject().All(p => p.Value.ValueKind == System.Text.Json.JsonValueKind.String);
        }
        catch (System.Text.Json.JsonException)
        {
            return false;
        }
    }
}

/// <summary>One of meshConfig's <c>extensionProviders</c>, named for Telemetry resources and <c>defaultProviders</c>.</summary>
internal abstract record ExtensionProvider(string Name);

/// <summary>
/// Istio's <c>opentelemetry</c> tracing provider: spans in OTLP to <c>service:port</c> (a host of the mesh's registry,
/// optionally <c>namespace/host</c>), over gRPC unless <c>http</c> is given.
/// </summary>
internal sealed record OpenTelemetryProvider(string Name, string Service, int Port) : ExtensionProvider(Name)
{
    /// <summary>Istio's <c>maxTagLength</c>: Envoy's <c>max_path_tag_length</c>; null keeps Envoy's 256.</summary>
    public int? MaxTagLength { get; init; }

    /// <summary>OTLP over HTTP to this path (<c>/v1/traces</c>); null exports over gRPC.</summary>
    public string? HttpPath { get; init; }

    /// <summary>The export's timeout (http.timeout or grpc.timeout); null keeps Envoy's.</summary>
    public TimeSpan? Timeout { get; init; }

    /// <summary>Headers sent with every export (http.headers or grpc.initialMetadata), literal values only.</summary>
    public IReadOnlyList<KeyValuePair<string, string>> Headers { get; init; } = [];
}

/// <summary>Istio's <c>envoyFileAccessLog</c> provider: Envoy's file access log to <c>path</c> in its own format.</summary>
/// <param name="Format">Text: an Envoy format string; JSON: a JSON object of key to format string; null: Istio's text format.</param>
internal sealed record FileAccessLogProvider(string Name, string Path, AccessLogEncoding Encoding, string? Format) : ExtensionProvider(Name);

/// <summary>
/// Istio's mesh-wide telemetry settings: the access log (<c>accessLogFile</c>, <c>accessLogEncoding</c>,
/// <c>accessLogFormat</c>), the extension providers, the default providers, and the default trace sampling. They come
/// from the control plane's options, and the <c>istio</c> ConfigMap of <c>istio-system</c> overrides what it sets.
/// </summary>
/// <param name="AccessLogFile">Where proxies write (<c>/dev/stdout</c> is Istio's usual choice); null: no access log.</param>
/// <param name="Format">A custom format: Envoy's format string for TEXT, a JSON object of key to format string for JSON; null: Istio's.</param>
internal sealed record MeshTelemetry(string? AccessLogFile, AccessLogEncoding Encoding = AccessLogEncoding.Text, string? Format = null)
{
    public static readonly MeshTelemetry Off = new((string?)null);

    /// <summary>meshConfig <c>extensionProviders</c>, by name.</summary>
    public IReadOnlyDictionary<string, ExtensionProvider> Providers { get; init; } = new Dictionary<string, ExtensionProvider>();

    /// <summary><c>defaultProviders.tracing</c>: the first traces every proxy no Telemetry resource says otherwise for.</summary>
    public IReadOnlyList<string> DefaultTracing { get; init; } = [];

    /// <summary><c>defaultProviders.accessLogging</c>: logged to by every proxy before Telemetry layers apply.</summary>
    public IReadOnlyList<string> DefaultAccessLogging { get; init; } = [];

    /// <summary>
    /// <c>defaultConfig.tracing.sampling</c>: the percentage of requests traced when a Telemetry resource sets none;
    /// Istio's default (PILOT_TRACE_SAMPLING) is 1.
    /// </summary>
    public double TraceSampling { get; init; } = 1.0;

    /// <summary><c>defaultConfig.tracing.maxPathTagLength</c>; null keeps Envoy's 256.</summary>
    public int? MaxPathTagLength { get; init; }

    /// <summary><c>defaultConfig.tracing.custom_tags</c>: the spans' custom tags where no Telemetry resource gives any.</summary>
    public IReadOnlyList<TracingTag> ProxyCustomTags { get; init; } = [];

    public bool Equals(MeshTelemetry? other) => other is not null && AccessLogFile == other.AccessLogFile && Encoding == other.Encoding && Format == other.Format
        && TraceSampling.Equals(other.TraceSampling) && MaxPathTagLength == other.MaxPathTagLength && ProxyCustomTags.SequenceEqual(other.ProxyCustomTags) && DefaultTracing.SequenceEqual(other.DefaultTracing)
        && DefaultAccessLogging.SequenceEqual(other.DefaultAccessLogging) && Providers.Count == other.Providers.Count
        && Providers.All(p => other.Providers.TryGetValue(p.Key, out var o) && ProviderEquals(p.Value, o));

    public override int GetHashCode() => HashCode.Combine(AccessLogFile, Encoding, Format, TraceSampling, Providers.Count);

    private static bool ProviderEquals(ExtensionProvider a, ExtensionProvider b) =>
        a is OpenTelemetryProvider x && b is OpenTelemetryProvider y ? x with { Headers = [] } == y with { Headers = [] } && x.Headers.SequenceEqual(y.Headers) : a.Equals(b);
}
