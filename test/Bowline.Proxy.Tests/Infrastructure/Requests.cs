using Microsoft.AspNetCore.Http;

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
        foreach (var (name, value) in headers)
        {
            request.Headers.Append(name, value);
        }
        return request;
    }
}
