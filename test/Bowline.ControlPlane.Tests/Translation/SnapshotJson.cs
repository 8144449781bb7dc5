using System.Text.Encodings.Web;
using System.Text.Json;
using System.Text.Json.Nodes;
using Bowline.ControlPlane.Snapshots;
using Bowline.Xds;

namespace Bowline.ControlPlane.Tests.Translation;

/// <summary>A snapshot as deterministic, reviewable JSON: types in push order, resources by name, each in Envoy's JSON form.</summary>
internal static class SnapshotJson
{
    private static readonly JsonSerializerOptions Options = new() { WriteIndented = true, Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping };

    /// <summary>
    /// XdsJson's registry plus the route features' filter configs (fault, CORS, local rate limit, retry predicate), which the control plane
    /// now sends inside <c>Any</c>; Bowline.Xds's shared registry does not list them yet.
    /// </summary>
    private static readonly Google.Protobuf.JsonFormatter Formatter = new(Google.Protobuf.JsonFormatter.Settings.Default.WithIndentation().WithTypeRegistry(Google.Protobuf.Reflection.TypeRegistry.FromFiles(
        Envoy.Config.Listener.V3.ListenerReflection.Descriptor,
        Envoy.Config.Route.V3.RouteReflection.Descriptor,
        Envoy.Config.Cluster.V3.ClusterReflection.Descriptor,
        Envoy.Config.Endpoint.V3.EndpointReflection.Descriptor,
        Envoy.Extensions.Filters.Network.HttpConnectionManager.V3.HttpConnectionManagerReflection.Descriptor,
        Envoy.Extensions.Filters.Http.Router.V3.RouterReflection.Descriptor,
        Envoy.Extensions.Upstreams.Http.V3.HttpProtocolOptionsReflection.Descriptor,
        Envoy.Extensions.Filters.Http.Fault.V3.FaultReflection.Descriptor,
        Envoy.Extensions.Filters.Http.Cors.V3.CorsReflection.Descriptor,
        Envoy.Extensions.Filters.Http.LocalRatelimit.V3.LocalRateLimitReflection.Descriptor,
        Envoy.Extensions.Retry.Host.PreviousHosts.V3.PreviousHostsReflection.Descriptor,
        Udpa.Type.V1.TypedStructReflection.Descriptor,
        Envoy.Extensions.RateLimitDescriptors.Expr.V3.ExprReflection.Descriptor)));

    public static string Serialize(XdsSnapshot snapshot)
    {
        var root = new JsonObject();
        foreach (var typeUrl in TypeUrls.PushOrder)
        {
            // Golden files predate SDS: secrets show only when a snapshot has some.
            if (typeUrl == TypeUrls.Secret && snapshot.Get(typeUrl) is not { Resources.Count: > 0 })
            {
                continue;
            }
            var resources = new JsonObject();
            if (snapshot.Get(typeUrl) is { } set)
            {
                foreach (var resource in set.Resources.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
                {
                    resources[resource.Name] = JsonNode.Parse(Formatter.Format(resource.Message));
                }
            }
            root[TypeUrls.ShortName(typeUrl)] = resources;
        }
        root["warnings"] = new JsonArray(snapshot.Warnings.Select(w => (JsonNode?)JsonValue.Create(w)).ToArray());
        return root.ToJsonString(Options).ReplaceLineEndings("\n") + "\n";
    }
}
