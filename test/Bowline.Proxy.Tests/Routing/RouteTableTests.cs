using Bowline.Proxy.Routing;

namespace Bowline.Proxy.Tests.Routing;

public sealed class RouteTableTests
{
    /// <summary>Virtual hosts named after how they match, in Envoy's precedence order, listed in an order that does not give it away.</summary>
    private static readonly RouteTable Table = Create(
        (["*"], "default"),
        (["api.*"], "prefix-short"),
        (["*.com"], "suffix-short"),
        (["api.v1.*"], "prefix-long"),
        (["*.example.com"], "suffix-long"),
        (["api.example.com"], "exact"));

    [Fact]
    public void FindVirtualHost_ExactDomain_BeatsEveryWildcard()
    {
        Assert.Equal("exact", Table.FindVirtualHost("api.example.com")?.Name);
    }

    [Fact]
    public void FindVirtualHost_TwoSuffixWildcardsMatch_LongestWins()
    {
        Assert.Equal("suffix-long", Table.FindVirtualHost("web.example.com")?.Name);
        Assert.Equal("suffix-short", Table.FindVirtualHost("web.other.com")?.Name);
    }

    [Fact]
    public void FindVirtualHost_SuffixAndPrefixWildcardsMatch_SuffixWins()
    {
        Assert.Equal("suffix-short", Table.FindVirtualHost("api.other.com")?.Name);
    }

    [Fact]
    public void FindVirtualHost_TwoPrefixWildcardsMatch_LongestWins()
    {
        Assert.Equal("prefix-long", Table.FindVirtualHost("api.v1.internal")?.Name);
        Assert.Equal("prefix-short", Table.FindVirtualHost("api.internal")?.Name);
    }

    [Fact]
    public void FindVirtualHost_NoDomainMatches_FallsBackToStar()
    {
        Assert.Equal("default", Table.FindVirtualHost("reviews")?.Name);
    }

    [Fact]
    public void FindVirtualHost_NoDomainMatchesAndNoStar_ReturnsNull()
    {
        var table = Create((["reviews"], "reviews"));

        Assert.Null(table.FindVirtualHost("ratings"));
    }

    [Fact]
    public void FindVirtualHost_WildcardWouldMatchNothing_DoesNotMatch()
    {
        // Envoy's wildcard stands for at least one character: "*.example.com" is not "example.com" nor ".example.com".
        var table = Create((["*.example.com"], "suffix"), (["api.*"], "prefix"));

        Assert.Null(table.FindVirtualHost(".example.com"));
        Assert.Null(table.FindVirtualHost("api."));
    }

    [Theory]
    [InlineData("API.EXAMPLE.COM", "exact")]
    [InlineData("Web.Example.Com", "suffix-long")]
    [InlineData("API.V1.Internal", "prefix-long")]
    public void FindVirtualHost_MixedCaseHost_MatchesCaseInsensitively(string host, string expected)
    {
        Assert.Equal(expected, Table.FindVirtualHost(host)?.Name);
    }

    [Fact]
    public void FindVirtualHost_HostWithPort_MatchesTheDomainThatListsThePort()
    {
        // Istio lists every short form of a service with and without its port.
        var table = Create((["reviews", "reviews:9080", "reviews.default.svc.cluster.local:9080"], "reviews"), (["*"], "default"));

        Assert.Equal("reviews", table.FindVirtualHost("reviews:9080")?.Name);
        Assert.Equal("reviews", table.FindVirtualHost("Reviews.Default.svc.cluster.local:9080")?.Name);
    }

    [Fact]
    public void FindVirtualHost_HostWithUnlistedPort_DoesNotMatchThePortlessDomain()
    {
        // Envoy compares the whole Host header, port included, unless told to strip it.
        var table = Create((["reviews", "reviews:9080"], "reviews"), (["*"], "default"));

        Assert.Equal("default", table.FindVirtualHost("reviews:1234")?.Name);
    }

    private static RouteTable Create(params (string[] Domains, string Name)[] hosts) =>
        new("test", [.. hosts.Select(h => ((IReadOnlyList<string>)h.Domains, new VirtualHostEntry(h.Name, [], null)))]);
}
