using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;
using Bowline.ControlPlane.Snapshots;
using Envoy.Config.Core.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using CustomTag = Envoy.Type.Tracing.V3.CustomTag;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Istio's tracing of an HTTP connection manager (pilot's configureTracing): the side's merged Telemetry spec, its
/// opentelemetry provider as Envoy's OpenTelemetry tracer exporting to the collector's outbound cluster, sampling
/// (client and overall 100%, random the spec's percentage or meshConfig's default), Istio's literal <c>istio.*</c>
/// tags then the spec's, and the UUID request id extension's choice of draw. A gateway spawns an upstream span,
/// as Istio's routers do. On a sidecar's outbound side, loopback is the workload itself, so it counts as internal:
/// the workload's propagated sampling decision is kept rather than drawn again.
/// </summary>
internal static class TracingBuilder
{
    public const string OpenTelemetryTracer = "envoy.tracers.opentelemetry";

    public static void Apply(HttpConnectionManager hcm, ServiceIndex index, ProxyNode node, TelemetryMode side, SnapshotBuilder snapshot)
    {
        var mesh = index.Config;
        if (mesh.TracingFor(node.Namespace, node.Labels, side) is not { Disabled: false, Provider: { } name } spec)
        {
            return;
        }
        if (mesh.Telemetry.Providers.GetValueOrDefault(name) is not OpenTelemetryProvider provider)
        {
            snapshot.Warn($"proxy {node.Id}: tracing provider '{name}' is not an opentelemetry provider of meshConfig extensionProviders; it reports no spans until one is defined (istio-system/istio ConfigMap)");
            return;
        }
        if (Collector(index, provider) is not { } collector)
        {
            snapshot.Warn($"proxy {node.Id}: tracing provider '{name}': {provider.Service}:{provider.Port} is not a service port of the mesh; it reports no spans until a Service or ServiceEntry declares it");
            return;
        }
        hcm.Tracing = new HttpConnectionManager.Types.Tracing
        {
            Provider = new Tracing.Types.Http { Name = OpenTelemetryTracer, TypedConfig = Any.Pack(Exporter(provider, collector.Host, collector.Cluster, node)) },
            ClientSampling = new Envoy.Type.V3.Percent { Value = 100 },
            OverallSampling = new Envoy.Type.V3.Percent { Value = 100 },
            RandomSampling = new Envoy.Type.V3.Percent { Value = spec.RandomSamplingPercentage ?? mesh.Telemetry.TraceSampling },
            SpawnUpstreamSpan = node.Kind == ProxyKind.Gateway ? true : null,
            MaxPathTagLength = (uint?)(provider.MaxTagLength ?? mesh.Telemetry.MaxPathTagLength),
        };
        hcm.Tracing.CustomTags.AddRange(Tags(spec, mesh.Telemetry.ProxyCustomTags, node, mesh.Security.TrustDomain));
        hcm.RequestIdExtension = new RequestIDExtension
        {
            TypedConfig = Any.Pack(new Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig { UseRequestIdForTraceSampling = spec.UseRequestIdForTraceSampling }),
        };
        if (side == TelemetryMode.Client && node.Kind == ProxyKind.Sidecar)
        {
            hcm.InternalAddressConfig = new HttpConnectionManager.Types.InternalAddressConfig
            {
                CidrRanges = { new CidrRange { AddressPrefix = "127.0.0.0", PrefixLen = 8 }, new CidrRange { AddressPrefix = "::1", PrefixLen = 128 } },
            };
        }
    }

    /// <summary>Istio's LookupCluster: the provider's service (a host, or <c>namespace/host</c>) and port as its outbound cluster.</summary>
    private static (string Host, string Cluster)? Collector(ServiceIndex index, OpenTelemetryProvider provider)
    {
        var slash = provider.Service.IndexOf('/', StringComparison.Ordinal);
        var host = slash < 0 ? provider.Service : provider.Service[(slash + 1)..];
        if (index.FindService(host) is not { } service || (slash >= 0 && service.Namespace != provider.Service[..slash]) || service.Ports.All(p => p.Number != provider.Port))
        {
            return null;
        }
        return (service.Hostname, IstioNames.OutboundCluster(provider.Port, null, service.Hostname));
    }

    private static OpenTelemetryConfig Exporter(OpenTelemetryProvider provider, string host, string cluster, ProxyNode node)
    {
        // Istio's service name is the node's service cluster; Bowline's sidecars send their app name there.
        var config = new OpenTelemetryConfig { ServiceName = node.ServiceCluster is { Length: > 0 } c ? c : $"{node.Labels.GetValueOrDefault("app", node.Name)}.{node.Namespace}" };
        var timeout = provider.Timeout is { } t ? Duration.FromTimeSpan(t) : null;
        if (provider.HttpPath is { } path)
        {
            config.HttpService = new HttpService { HttpUri = new HttpUri { Uri = host + path, Cluster = cluster, Timeout = timeout } };
            config.HttpService.RequestHeadersToAdd.AddRange(provider.Headers.Select(h => new HeaderValueOption { Header = new HeaderValue { Key = h.Key, Value = h.Value } }));
        }
        else
        {
            config.GrpcService = new GrpcService { EnvoyGrpc = new GrpcService.Types.EnvoyGrpc { ClusterName = cluster, Authority = host }, Timeout = timeout };
            config.GrpcService.InitialMetadata.AddRange(provider.Headers.Select(h => new HeaderValue { Key = h.Key, Value = h.Value }));
        }
        return config;
    }

    /// <summary>Istio's buildServiceTags (unless the spec turns Istio's tags off) and the spec's own, sorted by name as Istio sorts them.</summary>
    /// <summary>
    /// Istio's <c>configureCustomTags</c>: its own tags when enabled, then the Telemetry's custom tags, or, where the
    /// Telemetry layers give none, ProxyConfig's (<c>defaultConfig.tracing.custom_tags</c>); sorted by name.
    /// </summary>
    private static IEnumerable<CustomTag> Tags(TracingSpec spec, IReadOnlyList<TracingTag> proxyConfigTags, ProxyNode node, string trustDomain)
    {
        var tags = new List<CustomTag>();
        if (spec.EnableIstioTags)
        {
            tags.Add(Literal("istio.canonical_revision", Bowline.Xds.CanonicalNames.Revision(node.Labels)));
            tags.Add(Literal("istio.canonical_service", Bowline.Xds.CanonicalNames.Service(node.Labels, node.Name)));
            tags.Add(Literal("istio.mesh_id", trustDomain));
            tags.Add(Literal("istio.namespace", node.Namespace));
            tags.Add(Literal("istio.cluster_id", node.ClusterId));
        }
        foreach (var tag in spec.CustomTags.Count > 0 ? spec.CustomTags : proxyConfigTags)
        {
            var custom = new CustomTag { Tag = tag.Name };
            if (tag.Literal is { } literal)
            {
                custom.Literal = new CustomTag.Types.Literal { Value = literal };
            }
            else if (tag.Environment is { } variable)
            {
                custom.Environment = new CustomTag.Types.Environment { Name = variable, DefaultValue = tag.Default ?? "" };
            }
            else
            {
                custom.RequestHeader = new CustomTag.Types.Header { Name = tag.Header, DefaultValue = tag.Default ?? "" };
            }
            tags.Add(custom);
        }
        return tags.OrderBy(t => t.Tag, StringComparer.Ordinal);
    }

    private static CustomTag Literal(string name, string value) => new() { Tag = name, Literal = new CustomTag.Types.Literal { Value = value } };
}
