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

    public static string Serialize(XdsSnapshot snapshot)
    {
        var root = new JsonObject();
        foreach (var typeUrl in TypeUrls.PushOrder)
        {
            var resources = new JsonObject();
            if (snapshot.Get(typeUrl) is { } set)
            {
                foreach (var resource in set.Resources.Values.OrderBy(r => r.Name, StringComparer.Ordinal))
                {
                    resources[resource.Name] = JsonNode.Parse(XdsJson.Format(resource.Message));
                }
            }
            root[TypeUrls.ShortName(typeUrl)] = resources;
        }
        root["warnings"] = new JsonArray(snapshot.Warnings.Select(w => (JsonNode?)JsonValue.Create(w)).ToArray());
        return root.ToJsonString(Options).ReplaceLineEndings("\n") + "\n";
    }
}
