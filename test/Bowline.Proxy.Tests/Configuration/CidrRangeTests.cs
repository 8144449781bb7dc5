using System.Net;
using Bowline.Proxy.Configuration;

namespace Bowline.Proxy.Tests.Configuration;

/// <summary>Envoy's CidrRange, compiled once for filter chain matches, RBAC and the tracer's internal addresses.</summary>
public sealed class CidrRangeTests
{
    private static CidrRange Range(string prefix, uint? length) =>
        CidrRange.From(new Envoy.Config.Core.V3.CidrRange { AddressPrefix = prefix, PrefixLen = length }, "test");

    [Theory]
    [InlineData("10.0.0.0", 8u, "10.200.3.4", true)]
    [InlineData("10.0.0.0", 8u, "11.0.0.1", false)]
    [InlineData("10.1.2.3", 8u, "10.9.9.9", true)]            // host bits masked off, as Envoy does
    [InlineData("10.0.0.0", 8u, "::ffff:10.1.1.1", true)]     // an IPv4 peer on a dual-stack socket
    [InlineData("::ffff:10.0.0.0", 104u, "10.7.7.7", true)]   // a mapped prefix of 96 bits or more is IPv4
    [InlineData("::", 0u, "::ffff:10.1.1.1", true)]           // ...and an IPv6 range still holds the mapped form
    [InlineData("::", 0u, "10.1.1.1", false)]
    [InlineData("::ffff:0:0", 95u, "::ffff:10.1.2.3", true)]   // wider than the mapped range: IPv6, holding mapped peers
    [InlineData("::ffff:0:0", 95u, "2001:db8::1", false)]
    [InlineData("64:ff9b::", 96u, "::ffff:10.1.2.3", false)]   // another IPv6 range does not
    [InlineData("10.0.0.0", null, "192.168.1.1", true)]       // prefix_len unset is 0 in Envoy
    [InlineData("::1", 128u, "::1", true)]
    public void Contains_FollowsEnvoysRules(string prefix, uint? length, string address, bool expected) =>
        Assert.Equal(expected, Range(prefix, length).Contains(IPAddress.Parse(address)));

    [Theory]
    [InlineData("10.0.0", 8u, "is not an IP address")]
    [InlineData("10.0.0.0", 33u, "is longer than an address")]
    [InlineData("::1", 129u, "is longer than an address")]
    public void From_BadRange_NamesTheProblem(string prefix, uint length, string message) =>
        Assert.Contains(message, Assert.Throws<ProxyConfigException>(() => Range(prefix, length)).Message, StringComparison.Ordinal);
}
