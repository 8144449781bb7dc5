using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.Http;

/// <summary>
/// Envoy's dynamic metadata of one request: values filters publish for later filters to read, keyed by the filter
/// namespace that wrote them (<c>envoy.filters.http.jwt_authn</c>, <c>istio_authn</c>) and then by a path into a
/// <see cref="Struct"/>. The JWT filter writes what it verified here; RBAC's <c>metadata</c> matchers read it.
/// </summary>
/// <remarks>Owned by one request; not thread-safe. Created only when a filter writes, so most requests allocate none.</remarks>
internal sealed class DynamicMetadata
{
    private readonly Dictionary<string, Struct> _namespaces = new(StringComparer.Ordinal);

    /// <summary>Sets <paramref name="key"/> in <paramref name="filterNamespace"/>, replacing what was there.</summary>
    public void Set(string filterNamespace, string key, Value value)
    {
        if (!_namespaces.TryGetValue(filterNamespace, out var fields))
        {
            _namespaces[filterNamespace] = fields = new Struct();
        }
        fields.Fields[key] = value;
    }

    /// <summary>The value at <paramref name="path"/> (a key per nested struct level) under <paramref name="filterNamespace"/>, or null.</summary>
    public Value? Get(string filterNamespace, IReadOnlyList<string> path)
    {
        if (path.Count == 0 || !_namespaces.TryGetValue(filterNamespace, out var fields))
        {
            return null;
        }
        Value? value = null;
        for (var i = 0; i < path.Count; i++)
        {
            if (fields is null || !fields.Fields.TryGetValue(path[i], out value))
            {
                return null;
            }
            fields = value.KindCase == Value.KindOneofCase.StructValue ? value.StructValue : null;
        }
        return value;
    }

    /// <summary>Everything under <paramref name="filterNamespace"/>, or null when nothing was written there.</summary>
    public Struct? Namespace(string filterNamespace) => _namespaces.GetValueOrDefault(filterNamespace);
}
