using Bowline.Proxy.Http;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Bowline.Proxy.Routing;

/// <summary>How a header value is combined with what is there (Envoy's <c>HeaderValueOption.append_action</c>).</summary>
internal enum HeaderAppend
{
    AppendIfExistsOrAdd,
    AddIfAbsent,
    OverwriteIfExistsOrAdd,
    OverwriteIfExists,
}

/// <summary>One header to add or set.</summary>
internal sealed record HeaderAddition(string Name, string Value, HeaderAppend Action, bool KeepEmptyValue);

/// <summary>
/// Compiled <c>*_headers_to_add</c> and <c>*_headers_to_remove</c> of a route, virtual host or weighted cluster:
/// removals first, then additions, as Envoy applies them. Immutable. Values are literal: Envoy's <c>%...%</c>
/// substitutions are refused at compile time (the header formatter arrives with the access-log formatter).
/// </summary>
internal sealed class HeaderMutation(HeaderAddition[] additions, string[] removals)
{
    private readonly HeaderAddition[] _additions = additions;
    private readonly string[] _removals = removals;

    public bool IsEmpty => _additions.Length == 0 && _removals.Length == 0;

    /// <summary>Combines mutations outermost first (virtual host, route, weighted cluster): later ones win.</summary>
    public static HeaderMutation? Combine(params HeaderMutation?[] layers)
    {
        var present = layers.OfType<HeaderMutation>().Where(l => !l.IsEmpty).ToList();
        return present.Count switch
        {
            0 => null,
            1 => present[0],
            _ => new HeaderMutation([.. present.SelectMany(l => l._additions)], [.. present.SelectMany(l => l._removals)]),
        };
    }

    public void Apply(IHeaderDictionary headers, HttpStream? stream)
    {
        foreach (var name in _removals)
        {
            headers.Remove(name);
        }
        foreach (var add in _additions)
        {
            if (add.Value.Length == 0 && !add.KeepEmptyValue)
            {
                continue;
            }
            var exists = headers.TryGetValue(add.Name, out var current);
            switch (add.Action)
            {
                case HeaderAppend.AppendIfExistsOrAdd:
                    headers[add.Name] = exists ? StringValues.Concat(current, add.Value) : new StringValues(add.Value);
                    break;
                case HeaderAppend.AddIfAbsent when !exists:
                case HeaderAppend.OverwriteIfExistsOrAdd:
                case HeaderAppend.OverwriteIfExists when exists:
                    headers[add.Name] = add.Value;
                    break;
            }
        }
    }

    /// <summary>The same mutation for an outgoing <see cref="HttpRequestMessage"/> (request headers after YARP copied them).</summary>
    public void Apply(HttpRequestMessage request)
    {
        foreach (var name in _removals)
        {
            request.Headers.Remove(name);
            request.Content?.Headers.Remove(name);
        }
        foreach (var add in _additions)
        {
            if (add.Value.Length == 0 && !add.KeepEmptyValue)
            {
                continue;
            }
            var exists = request.Headers.Contains(add.Name);
            switch (add.Action)
            {
                case HeaderAppend.AppendIfExistsOrAdd:
                    request.Headers.TryAddWithoutValidation(add.Name, add.Value);
                    break;
                case HeaderAppend.AddIfAbsent when !exists:
                case HeaderAppend.OverwriteIfExistsOrAdd:
                case HeaderAppend.OverwriteIfExists when exists:
                    request.Headers.Remove(add.Name);
                    request.Headers.TryAddWithoutValidation(add.Name, add.Value);
                    break;
            }
        }
    }
}
