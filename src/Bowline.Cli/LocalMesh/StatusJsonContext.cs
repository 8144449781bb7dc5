using System.Text.Json.Serialization;

namespace Bowline.Cli.LocalMesh;

/// <summary>Source-generated (trim- and AOT-safe) JSON for <see cref="MeshStatus"/>.</summary>
[JsonSourceGenerationOptions(
    PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase,
    DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    WriteIndented = true)]
[JsonSerializable(typeof(MeshStatus))]
internal sealed partial class StatusJsonContext : JsonSerializerContext;
