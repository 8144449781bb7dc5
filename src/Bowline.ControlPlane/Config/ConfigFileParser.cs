using Bowline.ControlPlane.Config.Parsing;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace Bowline.ControlPlane.Config;

/// <summary>The outcome of reading one YAML file: the resources that passed validation, and every finding.</summary>
internal sealed record ParsedFile(string File, IReadOnlyList<MeshResource> Resources, IReadOnlyList<ConfigDiagnostic> Diagnostics)
{
    public bool HasErrors => Diagnostics.Any(d => d.Severity == DiagnosticSeverity.Error);
}

/// <summary>
/// Reads Kubernetes-style YAML (one or more documents) into Bowline's config model: the Istio networking API,
/// Istio's PeerAuthentication, AuthorizationPolicy and RequestAuthentication, Kubernetes Services, TLS Secrets (gateway credentials) and Istio's mesh config ConfigMap, Bowline Workloads and Bowline's HealthCheck and RateLimit. A resource with an error is rejected alone; a YAML syntax error
/// rejects the whole file, because nothing after it can be trusted.
/// </summary>
internal static class ConfigFileParser
{
    /// <param name="time">The clock a Secret's certificate validity is checked against; the system's when not given.</param>
    public static ParsedFile Parse(string file, string yaml, TimeProvider? time = null)
    {
        time ??= TimeProvider.System;
        var context = new ParseContext(file);
        var resources = new List<MeshResource>();
        var stream = new YamlStream();
        try
        {
            stream.Load(new StringReader(yaml));
        }
        catch (YamlException e)
        {
            context.FileError((int)e.Start.Line, $"invalid YAML: {e.InnerException?.Message ?? e.Message}; nothing in this file was applied");
            return new ParsedFile(file, [], context.Diagnostics);
        }

        foreach (var document in stream.Documents)
        {
            if (document.RootNode is YamlScalarNode { Value: null or "" } || document.RootNode is null)
            {
                continue;
            }
            if (document.RootNode is not YamlMappingNode root)
            {
                context.Resource = null;
                context.Error(document.RootNode, "", "expected a Kubernetes-style object with apiVersion, kind, metadata and spec");
                continue;
            }
            var before = context.ErrorCount;
            var resource = ParseDocument(root, context, time);
            if (resource is not null && context.ErrorCount == before)
            {
                resources.Add(resource);
            }
        }
        return new ParsedFile(file, resources, context.Diagnostics);
    }

    private static MeshResource? ParseDocument(YamlMappingNode root, ParseContext context, TimeProvider time)
    {
        context.Resource = null;
        var reader = new FieldReader(root, "", context);
        var apiVersion = reader.String("apiVersion", required: true);
        var kind = reader.String("kind", required: true);
        if (apiVersion is null || kind is null)
        {
            return null;
        }
        var metadata = ReadMetadata(reader, kind, context);
        if (metadata is null)
        {
            return null;
        }
        context.Resource = metadata.ToString();

        if (NotYetSupported.Contains(kind))
        {
            // An operator who applies a DENY policy or STRICT mTLS must not believe it is in force.
            context.Error(root, "kind", $"{kind} is not supported by Bowline yet and is NOT enforced: traffic is neither authorized nor encrypted by it");
            return null;
        }
        if (!Kinds.TryGetValue(kind, out var known))
        {
            context.Warning(root, "kind", $"kind {kind} is not used by Bowline; the object is ignored");
            return null;
        }
        if (!known.ApiVersions.Contains(apiVersion))
        {
            reader.Error("apiVersion", $"{kind} must have apiVersion {string.Join(" or ", known.ApiVersions)}, not {apiVersion}");
            return null;
        }
        if (kind == "ConfigMap")
        {
            // Like a Secret, its data sits at the top level; only Istio's mesh config is Bowline's.
            var mesh = MeshConfigParser.Parse(metadata, reader, context);
            reader.Finish();
            return mesh;
        }
        if (kind == "Secret")
        {
            // A Kubernetes Secret has no spec: its data sits at the top level.
            var secret = SecretParser.Parse(metadata, reader, time);
            reader.Finish();
            return secret;
        }
        var spec = reader.Map("spec", required: true);
        reader.Unsupported("status", "status");
        reader.Finish();
        if (spec is null)
        {
            return null;
        }
        var resource = known.Parse(metadata, spec);
        spec.Finish();
        return resource;
    }

    private static ResourceMeta? ReadMetadata(FieldReader reader, string kind, ParseContext context)
    {
        var metadata = reader.Map("metadata", required: true);
        if (metadata is null)
        {
            return null;
        }
        var name = metadata.String("name", required: true);
        var ns = metadata.String("namespace") ?? "default";
        var labels = metadata.StringMap("labels");
        var annotations = metadata.StringMap("annotations");
        // Kubernetes bookkeeping fields that carry no meaning for the mesh.
        foreach (var ignored in new[] { "uid", "resourceVersion", "generation", "managedFields", "ownerReferences", "finalizers", "generateName", "deletionTimestamp", "selfLink" })
        {
            metadata.Skip(ignored);
        }
        // Istio's tie-break between policies of one scope is the oldest; kubectl output carries the time.
        DateTimeOffset? created = null;
        if (metadata.String("creationTimestamp") is { } timestamp)
        {
            if (DateTimeOffset.TryParse(timestamp, System.Globalization.CultureInfo.InvariantCulture, System.Globalization.DateTimeStyles.AssumeUniversal, out var parsed))
            {
                created = parsed;
            }
            else
            {
                metadata.Warning("creationTimestamp", $"'{timestamp}' is not an RFC 3339 time (2024-05-01T12:00:00Z); it is ignored, so this object counts as the oldest of its kind");
            }
        }
        metadata.Finish();
        if (name is null)
        {
            return null;
        }
        if (!Names.IsDnsLabelOrSubdomain(name))
        {
            metadata.Error("name", $"'{name}' is not a valid name: use lower-case letters, digits, '-' and '.', starting and ending with a letter or digit");
            return null;
        }
        return new ResourceMeta(kind, name, ns, labels, context.File, reader.Line) { CreationTimestamp = created, Annotations = annotations };
    }

    private sealed record KindParser(string[] ApiVersions, Func<ResourceMeta, FieldReader, MeshResource?> Parse);

    private static readonly Dictionary<string, KindParser> Kinds = new(StringComparer.Ordinal)
    {
        ["Service"] = new(["v1"], ServiceParser.Parse),
        ["ServiceEntry"] = new(IstioNetworking, ServiceEntryParser.Parse),
        ["WorkloadEntry"] = new(IstioNetworking, WorkloadEntryParser.Parse),
        ["VirtualService"] = new(IstioNetworking, VirtualServiceParser.Parse),
        ["DestinationRule"] = new(IstioNetworking, DestinationRuleParser.Parse),
        ["Gateway"] = new(IstioNetworking, GatewayParser.Parse),
        // Parsed by SecretParser (no spec); listed for its apiVersion.
        ["Secret"] = new(["v1"], (_, _) => null),
        // Parsed by MeshConfigParser (no spec): Istio's mesh config, the istio ConfigMap of istio-system.
        ["ConfigMap"] = new(["v1"], (_, _) => null),
        ["Workload"] = new(["bowline.io/v1alpha1"], WorkloadParser.Parse),
        ["HealthCheck"] = new([BowlineV1Alpha1], HealthCheckParser.Parse),
        ["RateLimit"] = new([BowlineV1Alpha1], RateLimitParser.Parse),
        ["PeerAuthentication"] = new(IstioSecurity, PeerAuthenticationParser.Parse),
        ["AuthorizationPolicy"] = new(IstioSecurity, AuthorizationPolicyParser.Parse),
        ["RequestAuthentication"] = new(IstioSecurity, RequestAuthenticationParser.Parse),
        ["Telemetry"] = new(["telemetry.istio.io/v1", "telemetry.istio.io/v1alpha1"], TelemetryParser.Parse),
    };

    private static readonly HashSet<string> NotYetSupported = new(StringComparer.Ordinal)
    {
        "Sidecar", "EnvoyFilter", "WorkloadGroup", "ProxyConfig", "WasmPlugin",
    };

    /// <summary>Bowline's own kinds: what Istio needs an EnvoyFilter for (docs/bowline-resources.md).</summary>
    private const string BowlineV1Alpha1 = "bowline.dev/v1alpha1";

    private static string[] IstioSecurity => ["security.istio.io/v1", "security.istio.io/v1beta1"];

    private static string[] IstioNetworking => ["networking.istio.io/v1", "networking.istio.io/v1beta1", "networking.istio.io/v1alpha3"];
}
