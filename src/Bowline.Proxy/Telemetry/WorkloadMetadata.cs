using System.Collections.Concurrent;
using System.Text;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Telemetry;

/// <summary>
/// What Istio's metrics say about one side of a request: the workload, its namespace and service account, its
/// app/version and canonical service/revision labels, its cluster. Exchanged between sidecars as Istio does
/// (<c>x-envoy-peer-metadata</c>, a base64 <c>google.protobuf.Struct</c> of the node's metadata), and interned:
/// one instance per distinct peer, so metric series key on it by reference and a request allocates nothing for it.
/// The label text is rendered once, here.
/// </summary>
internal sealed class WorkloadMetadata
{
    public const string HeaderName = "x-envoy-peer-metadata";
    public const string IdHeaderName = "x-envoy-peer-metadata-id";

    /// <summary>Istio's <c>CLUSTER_ID</c> when a node names none.</summary>
    public const string DefaultCluster = "Kubernetes";

    private const string Unknown = "unknown";

    // Distinct peers seen, by their header value: bounded so a hostile peer cannot grow it (or the series) without end.
    private const int MaxInterned = 4096;
    private static readonly ConcurrentDictionary<string, WorkloadMetadata?> s_interned = new(StringComparer.Ordinal);

    private WorkloadMetadata(string workload, string ns, string serviceAccount, IReadOnlyDictionary<string, string> labels, string cluster)
    {
        Workload = workload.Length > 0 ? workload : Unknown;
        Namespace = ns.Length > 0 ? ns : Unknown;
        ServiceAccount = serviceAccount;
        Cluster = cluster.Length > 0 ? cluster : Unknown;
        CanonicalService = Bowline.Xds.CanonicalNames.Service(labels, Workload);
        CanonicalRevision = Bowline.Xds.CanonicalNames.Revision(labels);
        App = labels.GetValueOrDefault("app") ?? CanonicalService;
        Version = labels.GetValueOrDefault("version") ?? CanonicalRevision;
        Labels = labels;
        SourceLabels = Render("source");
        DestinationLabels = Render("destination");
    }

    /// <summary>The metadata of a peer nobody vouched for: every label <c>unknown</c>.</summary>
    public static WorkloadMetadata None { get; } = new(Unknown, Unknown, "", new Dictionary<string, string>(), Unknown);

    public string Workload { get; }

    public string Namespace { get; }

    public string ServiceAccount { get; }

    public string App { get; }

    public string Version { get; }

    public string CanonicalService { get; }

    public string CanonicalRevision { get; }

    public string Cluster { get; }

    public IReadOnlyDictionary<string, string> Labels { get; }

    /// <summary>The workload labels as Istio orders them, the principal aside: <c>(before, after)</c> <c>source_principal</c>.</summary>
    public (string BeforePrincipal, string AfterPrincipal) SourceLabels { get; }

    public (string BeforePrincipal, string AfterPrincipal) DestinationLabels { get; }

    /// <summary>This workload's own metadata, from the proxy's bootstrap node.</summary>
    public static WorkloadMetadata Local(ProxyOptions options) =>
        new(options.WorkloadName, options.Namespace, options.ServiceAccount, options.Labels, options.ClusterId);

    /// <summary>The value of <see cref="HeaderName"/> for this workload: a base64 Struct with Istio's node metadata keys.</summary>
    public string Encode()
    {
        var labels = new Struct();
        foreach (var (key, value) in Labels)
        {
            labels.Fields[key] = Value.ForString(value);
        }
        var metadata = new Struct
        {
            Fields =
            {
                ["NAME"] = Value.ForString(Workload),
                ["WORKLOAD_NAME"] = Value.ForString(Workload),
                ["NAMESPACE"] = Value.ForString(Namespace),
                ["SERVICE_ACCOUNT"] = Value.ForString(ServiceAccount),
                ["CLUSTER_ID"] = Value.ForString(Cluster),
                ["LABELS"] = Value.ForStruct(labels),
            },
        };
        return Convert.ToBase64String(metadata.ToByteArray());
    }

    /// <summary>
    /// The peer a <see cref="HeaderName"/> value describes, interned; null when it is not a valid Struct. The caller
    /// decides whether to believe it (<see cref="IsVouchedFor"/>).
    /// </summary>
    public static WorkloadMetadata? Decode(string header)
    {
        if (s_interned.TryGetValue(header, out var known))
        {
            return known;
        }
        var parsed = Parse(header);
        if (s_interned.Count < MaxInterned)
        {
            // Two threads may parse the same header; the first one stored is the one everybody keeps.
            return s_interned.GetOrAdd(header, parsed);
        }
        return parsed is null ? null : None;
    }

    /// <summary>
    /// Istio's rule for trusting exchanged metadata, made strict: it must arrive over mutual TLS from a certificate
    /// whose SPIFFE identity is the namespace and service account the metadata claims. A client outside the mesh, or
    /// one workload claiming to be another, is reported as <see cref="None"/>.
    /// </summary>
    public bool IsVouchedFor(Tls.SpiffeId? peer) =>
        peer is not null && string.Equals(peer.Namespace, Namespace, StringComparison.Ordinal) && string.Equals(peer.ServiceAccount, ServiceAccount, StringComparison.Ordinal);

    private static readonly ConcurrentDictionary<string, WorkloadMetadata> s_byEndpoint = new(StringComparer.Ordinal);

    /// <summary>
    /// The workload an EDS endpoint's <c>istio</c> filter metadata names (<c>workload</c>: Istio's compressed
    /// <c>name;namespace;canonical-service;canonical-revision;cluster-id</c>): the control plane's word for the server,
    /// which a client's metrics use when no metadata was exchanged (TCP, or a request that never reached the server).
    /// Interned per value; null when the value has not those five fields, or when the bound of distinct values is reached.
    /// </summary>
    public static WorkloadMetadata? FromEndpoint(string encoded)
    {
        if (s_byEndpoint.TryGetValue(encoded, out var known))
        {
            return known;
        }
        var parts = encoded.Split(';');
        if (parts.Length != 5 || parts[0].Length == 0)
        {
            return null;
        }
        var labels = new Dictionary<string, string>(StringComparer.Ordinal) { [Bowline.Xds.CanonicalNames.ServiceLabel] = parts[2] };
        if (parts[3].Length > 0)
        {
            labels[Bowline.Xds.CanonicalNames.RevisionLabel] = parts[3];
        }
        // Past the bound, no label rather than a fresh instance: series key on instances, so a new one per compile would
        // open duplicate series without end.
        return s_byEndpoint.Count >= MaxInterned ? null
            : s_byEndpoint.GetOrAdd(encoded, new WorkloadMetadata(parts[0], parts[1], "", labels, parts[4].Length > 0 ? parts[4] : DefaultCluster));
    }

    private static readonly ConcurrentDictionary<(string, string), WorkloadMetadata> s_byIdentity = new();

    /// <summary>
    /// A peer known only by its certificate (TCP, where no metadata is exchanged): its namespace from the SPIFFE ID, the
    /// rest unknown. Interned per identity, which the CA bounds.
    /// </summary>
    public static WorkloadMetadata OfIdentity(Tls.SpiffeId? identity)
    {
        if (identity is null)
        {
            return None;
        }
        var key = (identity.Namespace, identity.ServiceAccount);
        if (s_byIdentity.TryGetValue(key, out var known))
        {
            return known;
        }
        return s_byIdentity.Count >= MaxInterned ? None : s_byIdentity.GetOrAdd(key, static k => new WorkloadMetadata(Unknown, k.Item1, k.Item2, new Dictionary<string, string>(), Unknown));
    }

    private static WorkloadMetadata? Parse(string header)
    {
        Struct metadata;
        try
        {
            metadata = Struct.Parser.ParseFrom(Convert.FromBase64String(header));
        }
        catch (Exception e) when (e is FormatException or InvalidProtocolBufferException)
        {
            return null;
        }
        string Field(string name) => metadata.Fields.TryGetValue(name, out var v) && v.KindCase == Value.KindOneofCase.StringValue ? v.StringValue : "";
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (metadata.Fields.TryGetValue("LABELS", out var l) && l.KindCase == Value.KindOneofCase.StructValue)
        {
            foreach (var (key, value) in l.StructValue.Fields)
            {
                if (value.KindCase == Value.KindOneofCase.StringValue)
                {
                    labels[key] = value.StringValue;
                }
            }
        }
        var workload = Field("WORKLOAD_NAME") is { Length: > 0 } w ? w : Field("NAME");
        return new WorkloadMetadata(workload, Field("NAMESPACE"), Field("SERVICE_ACCOUNT"), labels, Field("CLUSTER_ID"));
    }

    private (string, string) Render(string side)
    {
        var before = new StringBuilder();
        Label(before, side, "workload", Workload);
        Label(before, side, "canonical_service", CanonicalService);
        Label(before, side, "canonical_revision", CanonicalRevision);
        Label(before, side, "workload_namespace", Namespace);
        var after = new StringBuilder();
        Label(after, side, "app", App);
        Label(after, side, "version", Version);
        Label(after, side, "cluster", Cluster);
        return (before.ToString(), after.ToString());
    }

    internal static void Label(StringBuilder text, string side, string name, string value)
    {
        text.Append(side).Append('_').Append(name).Append("=\"");
        Stats.PrometheusText.AppendEscaped(text, value);
        text.Append("\",");
    }
}
