using Microsoft.Extensions.Primitives;

namespace Bowline.Samples.Bookinfo.Upstreams;

/// <summary>The headers to put on the outgoing calls made for one incoming request, taken once
/// from that request and then applied to every call (and every retry).</summary>
internal sealed class OutgoingHeaders
{
    private readonly List<KeyValuePair<string, StringValues>> _headers;

    private OutgoingHeaders(List<KeyValuePair<string, StringValues>> headers) => _headers = headers;

    /// <summary>Copies <see cref="PropagatedHeaders.Names"/> from <paramref name="incoming"/>;
    /// a non-null <paramref name="endUser"/> (productpage's logged-in user) replaces any
    /// incoming <c>end-user</c>.</summary>
    public static OutgoingHeaders From(HttpRequest incoming, string? endUser = null)
    {
        var headers = new List<KeyValuePair<string, StringValues>>(PropagatedHeaders.Names.Count);
        foreach (string name in PropagatedHeaders.Names)
        {
            if (endUser is not null && name == PropagatedHeaders.EndUser)
            {
                headers.Add(new(name, endUser));
            }
            else if (incoming.Headers.TryGetValue(name, out StringValues values) && values.Count > 0)
            {
                headers.Add(new(name, values));
            }
        }

        return new OutgoingHeaders(headers);
    }

    public void ApplyTo(HttpRequestMessage request)
    {
        foreach ((string name, StringValues values) in _headers)
        {
            // Without validation: the values are forwarded verbatim, as the caller sent them.
            request.Headers.TryAddWithoutValidation(name, (IEnumerable<string?>)values);
        }
    }
}
