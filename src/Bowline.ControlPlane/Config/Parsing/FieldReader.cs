using System.Globalization;
using YamlDotNet.RepresentationModel;

namespace Bowline.ControlPlane.Config.Parsing;

/// <summary>
/// Reads one YAML mapping field by field, tracking the field path (<c>spec.http[0].match[1].uri</c>) so every
/// diagnostic names exactly what is wrong. Fields it was never asked for are reported by <see cref="Finish"/>:
/// nothing in a user's YAML is silently ignored.
/// </summary>
internal sealed class FieldReader
{
    private readonly YamlMappingNode _node;
    private readonly ParseContext _context;
    private readonly HashSet<string> _read = new(StringComparer.Ordinal);

    public FieldReader(YamlMappingNode node, string path, ParseContext context)
    {
        _node = node;
        Path = path;
        _context = context;
    }

    public string Path { get; }

    public int Line => (int)_node.Start.Line;

    /// <summary>Errors reported so far in this file; a parser compares it before and after reading a part to know if that part was valid.</summary>
    public int ErrorCount => _context.ErrorCount;

    public bool Has(string key) => _node.Children.ContainsKey(new YamlScalarNode(key));

    /// <summary>Whether the field is given as a mapping with no entries (<c>{}</c>), which some Istio fields forbid.</summary>
    public bool IsEmptyMap(string key) => _node.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlMappingNode { Children.Count: 0 };

    /// <summary>Whether the field is given as a list with no items (<c>[]</c>), which some Istio fields forbid.</summary>
    public bool IsEmptyList(string key) => _node.Children.TryGetValue(new YamlScalarNode(key), out var node) && node is YamlSequenceNode { Children.Count: 0 };

    public string? String(string key, bool required = false)
    {
        var node = Get(key, required);
        switch (node)
        {
            case null:
                return null;
            case YamlScalarNode scalar:
                return scalar.Value;
            default:
                Error(key, node, "expected a string");
                return null;
        }
    }

    public int? Int(string key, bool required = false, int min = int.MinValue, int max = int.MaxValue)
    {
        var node = Get(key, required);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode scalar && int.TryParse(scalar.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            if (value < min || value > max)
            {
                Error(key, node, $"{value} is out of range; expected {min} to {max}");
                return null;
            }
            return value;
        }
        Error(key, node, "expected an integer");
        return null;
    }

    public long? Long(string key, long min = long.MinValue, long max = long.MaxValue)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode scalar && long.TryParse(scalar.Value, NumberStyles.Integer, CultureInfo.InvariantCulture, out var value))
        {
            if (value < min || value > max)
            {
                Error(key, node, $"{value} is out of range; expected {min} to {max}");
                return null;
            }
            return value;
        }
        Error(key, node, "expected an integer");
        return null;
    }

    public double? Double(string key)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode scalar && double.TryParse(scalar.Value, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && double.IsFinite(value))
        {
            return value;
        }
        Error(key, node, "expected a number");
        return null;
    }

    public bool? Bool(string key)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return null;
        }
        if (node is YamlScalarNode { Value: "true" or "True" or "TRUE" })
        {
            return true;
        }
        if (node is YamlScalarNode { Value: "false" or "False" or "FALSE" })
        {
            return false;
        }
        Error(key, node, "expected true or false");
        return null;
    }

    /// <summary>
    /// A duration under Istio's rule for every duration it validates: at least 1ms and a whole number of milliseconds
    /// (Envoy's timers tick in milliseconds; a finer value would be silently rounded).
    /// </summary>
    public TimeSpan? IstioDuration(string key)
    {
        if (Duration(key) is not { } duration)
        {
            return null;
        }
        if (duration < TimeSpan.FromMilliseconds(1))
        {
            Error(key, $"{duration.TotalMilliseconds}ms is too short: Istio requires a duration of at least 1ms; remove the field for the default");
            return null;
        }
        if (duration.Ticks % TimeSpan.TicksPerMillisecond != 0)
        {
            Error(key, "only whole milliseconds are supported (Istio's rule); round the duration to ms");
            return null;
        }
        return duration;
    }

    /// <summary>Reads a mapping whose keys are data (header names, query parameter names), each value read by <paramref name="read"/>.</summary>
    public IReadOnlyList<(string Key, T Value)> Entries<T>(string key, Func<FieldReader?, string, T> read)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return [];
        }
        if (node is not YamlMappingNode map)
        {
            Error(key, node, "expected a mapping");
            return [];
        }
        var result = new List<(string, T)>();
        foreach (var (k, v) in map.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            var child = v is YamlMappingNode childMap ? new FieldReader(childMap, $"{Child(key)}.{name}", _context) : null;
            if (child is null && !(v is YamlScalarNode { Value: null or "" or "~" or "null", Style: YamlDotNet.Core.ScalarStyle.Plain }))
            {
                _context.Error(v, $"{Child(key)}.{name}", "expected a mapping");
                continue;
            }
            result.Add((name, read(child, $"{Child(key)}.{name}")));
        }
        return result;
    }

    /// <summary>An error about a value inside this mapping that is not itself a field (a map entry): at this mapping's line.</summary>
    public void ErrorAt(string field, string message) => _context.Error(_node, field, message);

    /// <summary>A warning about a field that is read and kept, but whose effect Bowline does not (yet) give.</summary>
    public void Warning(string key, string message) =>
        _context.Warning(Has(key) ? _node.Children[new YamlScalarNode(key)] : _node, Child(key), message);

    /// <summary>A protobuf Duration as Istio writes it: <c>1.5s</c>, <c>500ms</c>, <c>1m</c>, <c>1h</c>.</summary>
    public TimeSpan? Duration(string key)
    {
        var text = String(key);
        if (text is null)
        {
            return null;
        }
        if (DurationParser.TryParse(text, out var duration))
        {
            return duration;
        }
        Error(key, _node.Children[new YamlScalarNode(key)], $"'{text}' is not a duration; write it like 1.5s, 500ms, 1m or 1h");
        return null;
    }

    public FieldReader? Map(string key, bool required = false)
    {
        var node = Get(key, required);
        switch (node)
        {
            case null:
                return null;
            case YamlMappingNode map:
                return new FieldReader(map, Child(key), _context);
            default:
                Error(key, node, "expected a mapping (key: value pairs)");
                return null;
        }
    }

    public IReadOnlyList<FieldReader> MapList(string key, bool required = false)
    {
        var node = Get(key, required);
        if (node is null)
        {
            return [];
        }
        if (node is not YamlSequenceNode sequence)
        {
            Error(key, node, "expected a list");
            return [];
        }
        var result = new List<FieldReader>(sequence.Children.Count);
        for (var i = 0; i < sequence.Children.Count; i++)
        {
            if (sequence.Children[i] is YamlMappingNode map)
            {
                result.Add(new FieldReader(map, $"{Child(key)}[{i}]", _context));
            }
            else
            {
                _context.Error(sequence.Children[i], $"{Child(key)}[{i}]", "expected a mapping (key: value pairs)");
            }
        }
        return result;
    }

    public IReadOnlyList<string> StringList(string key, bool required = false)
    {
        var node = Get(key, required);
        if (node is null)
        {
            return [];
        }
        if (node is not YamlSequenceNode sequence)
        {
            Error(key, node, "expected a list of strings");
            return [];
        }
        var result = new List<string>(sequence.Children.Count);
        for (var i = 0; i < sequence.Children.Count; i++)
        {
            if (sequence.Children[i] is YamlScalarNode { Value: { } value })
            {
                result.Add(value);
            }
            else
            {
                _context.Error(sequence.Children[i], $"{Child(key)}[{i}]", "expected a string");
            }
        }
        return result;
    }

    public IReadOnlyDictionary<string, string> StringMap(string key)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return EmptyMap;
        }
        if (node is not YamlMappingNode map)
        {
            Error(key, node, "expected a mapping of strings");
            return EmptyMap;
        }
        var result = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            if (k is YamlScalarNode { Value: { } name } && v is YamlScalarNode { Value: { } value })
            {
                result[name] = value;
            }
            else
            {
                _context.Error(v, $"{Child(key)}.{k}", "expected a string value");
            }
        }
        return result;
    }

    public IReadOnlyDictionary<string, int> IntMap(string key, int min, int max)
    {
        var node = Get(key, required: false);
        if (node is null)
        {
            return new Dictionary<string, int>();
        }
        if (node is not YamlMappingNode map)
        {
            Error(key, node, "expected a mapping of names to numbers");
            return new Dictionary<string, int>();
        }
        var result = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (k, v) in map.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? "";
            if (v is YamlScalarNode { Value: { } text } && int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var number) && number >= min && number <= max)
            {
                result[name] = number;
            }
            else
            {
                _context.Error(v, $"{Child(key)}.{name}", $"expected a number from {min} to {max}");
            }
        }
        return result;
    }

    /// <summary>The line (1-based) a field's value starts on; the mapping's own line when it is absent.</summary>
    public int LineOf(string key) => (int)(_node.Children.TryGetValue(new YamlScalarNode(key), out var node) ? node.Start.Line : _node.Start.Line);

    /// <summary>Accepts a field of any shape without reading it: Kubernetes bookkeeping that means nothing to the mesh.</summary>
    public void Skip(string key) => _read.Add(key);

    /// <summary>The keys of a child mapping whose keys are data (header names), not field names.</summary>
    public IEnumerable<string> HeaderKeys()
    {
        if (_node.Children.TryGetValue(new YamlScalarNode("headers"), out var node) && node is YamlMappingNode map)
        {
            return map.Children.Keys.OfType<YamlScalarNode>().Select(k => k.Value ?? "").ToList();
        }
        return [];
    }

    /// <summary>Marks fields that Istio defines but Bowline does not implement yet: accepted, with a warning that says so.</summary>
    public void Unsupported(string key, string what)
    {
        if (Has(key))
        {
            _read.Add(key);
            _context.Warning(_node.Children[new YamlScalarNode(key)], Child(key), $"{what} is not supported by Bowline yet; this field has no effect");
        }
    }

    /// <summary>Reports every field that was not read: a typo, or a field that does not exist in this kind.</summary>
    public void Finish()
    {
        foreach (var (k, v) in _node.Children)
        {
            var name = (k as YamlScalarNode)?.Value ?? k.ToString();
            if (!_read.Contains(name))
            {
                _context.Error(k, Child(name), $"unknown field '{name}'; check the spelling against Istio's reference for this kind");
            }
        }
    }

    public void Error(string key, string message) =>
        _context.Error(Has(key) ? _node.Children[new YamlScalarNode(key)] : _node, Child(key), message);

    public void Error(string message) => _context.Error(_node, Path, message);

    private void Error(string key, YamlNode node, string message) => _context.Error(node, Child(key), message);

    private YamlNode? Get(string key, bool required)
    {
        _read.Add(key);
        if (_node.Children.TryGetValue(new YamlScalarNode(key), out var node))
        {
            // `key:` with no value is YAML null; treat it as absent, as Kubernetes does.
            if (node is YamlScalarNode { Value: null or "" or "~" or "null" } scalar && scalar.Style == YamlDotNet.Core.ScalarStyle.Plain)
            {
                node = null;
            }
        }
        if (node is null && required)
        {
            _context.Error(_node, Child(key), "is required");
        }
        return node;
    }

    private string Child(string key) => Path.Length == 0 ? key : $"{Path}.{key}";

    private static readonly IReadOnlyDictionary<string, string> EmptyMap = new Dictionary<string, string>();
}
