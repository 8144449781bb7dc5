using Bowline.Proxy.Clusters.LoadBalancing;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Routing;

/// <summary>What a hash policy hashes.</summary>
internal enum HashSource
{
    Header,
    Cookie,
    SourceIp,
    QueryParameter,
}

/// <summary>
/// One of a route's <c>hash_policy</c> entries, compiled. Envoy combines the hashes of the policies that apply
/// (rotating and xor-ing), and stops at the first <c>terminal</c> one that produced a hash.
/// </summary>
/// <param name="CookieTtl">For a cookie policy with a ttl: the proxy generates the cookie when the request lacks it.</param>
internal sealed record HashPolicy(HashSource Source, string Name, bool Terminal, TimeSpan? CookieTtl = null, string? CookiePath = null)
{
    /// <summary>The request's hash over <paramref name="policies"/>, or null when none applied (the balancer then picks at random).</summary>
    public static ulong? Compute(HashPolicy[] policies, HttpContext context, out (string Name, string Value, TimeSpan Ttl, string? Path)? generatedCookie)
    {
        generatedCookie = null;
        ulong? hash = null;
        foreach (var policy in policies)
        {
            ulong? one = null;
            switch (policy.Source)
            {
                case HashSource.Header when context.Request.Headers.TryGetValue(policy.Name, out var values):
                    one = HashRing.Hash(values.ToString());
                    break;
                case HashSource.Cookie when context.Request.Cookies.TryGetValue(policy.Name, out var cookie):
                    one = HashRing.Hash(cookie);
                    break;
                case HashSource.Cookie when policy.CookieTtl is { } ttl:
                    // Envoy's generated cookie: a value derived from the client's address, so the first request already hashes.
                    var value = HashRing.Hash(context.Connection.RemoteIpAddress?.ToString() ?? "").ToString("x16", System.Globalization.CultureInfo.InvariantCulture);
                    generatedCookie = (policy.Name, value, ttl, policy.CookiePath);
                    one = HashRing.Hash(value);
                    break;
                case HashSource.SourceIp when context.Connection.RemoteIpAddress is { } ip:
                    one = HashRing.Hash(ip.ToString());
                    break;
                case HashSource.QueryParameter when context.Request.Query.TryGetValue(policy.Name, out var query):
                    one = HashRing.Hash(query[0] ?? "");
                    break;
            }
            if (one is { } h)
            {
                hash = hash is { } previous ? ((previous << 1) | (previous >> 63)) ^ h : h;
                if (policy.Terminal)
                {
                    break;
                }
            }
        }
        return hash;
    }
}
