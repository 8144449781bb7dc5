using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Primitives;

namespace Bowline.Proxy.Tests.Infrastructure;

/// <summary>Builds the <see cref="HttpRequest"/> a route sees, without a server.</summary>
internal static class Requests
{
    /// <param name="pathAndQuery">The path, optionally with <c>?query</c>.</param>
    public static HttpRequest Create(string pathAndQuery, string host = "reviews", string method = "GET", params (string Name, string Value)[] headers)
    {
        var request = new DefaultHttpContext().Request;
        var query = pathAndQuery.IndexOf('?', StringComparison.Ordinal);
        request.Path = query < 0 ? pathAndQuery : pathAndQuery[..query];
        request.QueryString = query < 0 ? QueryString.Empty : new QueryString(pathAndQuery[query..]);
        request.Host = new HostString(host);
        request.Method = method;
        request.Scheme = "http";
        // TryAdd, not the indexer: the indexer drops empty values, and an empty header is still a present one.
        foreach (var group in headers.GroupBy(h => h.Name, StringComparer.OrdinalIgnoreCase))
        {
            request.Headers.TryAdd(group.Key, new StringValues([.. group.Select(h => h.Value)]));
        }
        return request;
    }
}
