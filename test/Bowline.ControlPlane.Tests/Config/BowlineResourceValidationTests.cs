using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Bowline's own kinds (bowline.dev/v1alpha1 HealthCheck and RateLimit), one rule per row: rejected with an error on the named field, or accepted.</summary>
public sealed class BowlineResourceValidationTests
{
    public static TheoryData<string, string, string?> HealthChecks => new()
    {
        { "http probe, defaults", "host: reviews\nhttp: {path: /healthz}", null },
        { "everything", "host: reviews.default.svc.cluster.local\nsubset: v1\nport: 9080\ninterval: 5s\ntimeout: 500ms\nhealthyThreshold: 2\nunhealthyThreshold: 4\nintervalJitter: 100ms\nhttp: {path: /ready, host: reviews.internal, expectedStatuses: [{start: 200, end: 204}, {start: 301, end: 301}]}", null },
        { "grpc probe", "host: ratings\ngrpc: {serviceName: ratings.v1.Ratings}", null },
        { "grpc probe of the whole server", "host: ratings\ngrpc: {}", null },
        { "tcp probe", "host: ratings\ntcp: {}", null },
        { "no host", "http: {path: /}", "spec.host" },
        { "wildcard host", "host: '*.example.com'\ntcp: {}", "spec.host" },
        { "bad host", "host: 'reviews!'\ntcp: {}", "spec.host" },
        { "no probe", "host: reviews", "spec" },
        { "two probes", "host: reviews\ntcp: {}\ngrpc: {}", "spec" },
        { "path without slash", "host: reviews\nhttp: {path: healthz}", "spec.http.path" },
        { "no path", "host: reviews\nhttp: {host: x}", "spec.http.path" },
        { "status range reversed", "host: reviews\nhttp: {path: /, expectedStatuses: [{start: 299, end: 200}]}", "spec.http.expectedStatuses[0]" },
        { "status out of range", "host: reviews\nhttp: {path: /, expectedStatuses: [{start: 200, end: 600}]}", "spec.http.expectedStatuses[0].end" },
        { "status range without end", "host: reviews\nhttp: {path: /, expectedStatuses: [{start: 200}]}", "spec.http.expectedStatuses[0].end" },
        { "interval 0", "host: reviews\ninterval: 0s\ntcp: {}", "spec.interval" },
        { "timeout not a duration", "host: reviews\ntimeout: soon\ntcp: {}", "spec.timeout" },
        { "sub-millisecond jitter", "host: reviews\nintervalJitter: 0.5ms\ntcp: {}", "spec.intervalJitter" },
        { "healthy threshold 0", "host: reviews\nhealthyThreshold: 0\ntcp: {}", "spec.healthyThreshold" },
        { "unhealthy threshold -1", "host: reviews\nunhealthyThreshold: -1\ntcp: {}", "spec.unhealthyThreshold" },
        { "port 0", "host: reviews\nport: 0\ntcp: {}", "spec.port" },
        { "bad subset", "host: reviews\nsubset: v_1\ntcp: {}", "spec.subset" },
        { "unknown field", "host: reviews\nperiod: 5s\ntcp: {}", "spec.period" },
        { "unknown tcp field", "host: reviews\ntcp: {send: x}", "spec.tcp.send" },
    };

    public static TheoryData<string, string, string?> RateLimits => new()
    {
        { "bucket only", "host: reviews\ntokenBucket: {maxTokens: 10, fillInterval: 1s}", null },
        { "everything", "host: reviews\nport: 9080\nmatch: [{uri: {prefix: /api}}, {uri: {exact: /login}}, {uri: {regex: '/v[0-9]+/.*'}}]\ntokenBucket: {maxTokens: 100, tokensPerFill: 10, fillInterval: 500ms}\nstatusCode: 503\nresponseHeaders: {x-limited-by: bowline}", null },
        { "no host", "tokenBucket: {maxTokens: 10, fillInterval: 1s}", "spec.host" },
        { "wildcard host", "host: '*'\ntokenBucket: {maxTokens: 10, fillInterval: 1s}", "spec.host" },
        { "no bucket", "host: reviews", "spec.tokenBucket" },
        { "per source only", "host: reviews\nperSource: {tokenBucket: {maxTokens: 10, fillInterval: 1s}}", null },
        { "per source with overrides and a client bucket", "host: reviews\ntokenBucket: {maxTokens: 100, fillInterval: 1s}\nperSource:\n  tokenBucket: {maxTokens: 10, fillInterval: 1s}\n  overrides:\n  - principal: cluster.local/ns/default/sa/bookinfo-productpage\n    tokenBucket: {maxTokens: 50, fillInterval: 1s}", null },
        { "per source without bucket", "host: reviews\nperSource: {}", "spec.perSource.tokenBucket" },
        { "override with spiffe prefix", "host: reviews\nperSource:\n  tokenBucket: {maxTokens: 10, fillInterval: 1s}\n  overrides: [{principal: 'spiffe://cluster.local/ns/default/sa/a', tokenBucket: {maxTokens: 1, fillInterval: 1s}}]", "spec.perSource.overrides[0].principal" },
        { "override wildcard", "host: reviews\nperSource:\n  tokenBucket: {maxTokens: 10, fillInterval: 1s}\n  overrides: [{principal: 'cluster.local/ns/default/sa/*', tokenBucket: {maxTokens: 1, fillInterval: 1s}}]", "spec.perSource.overrides[0].principal" },
        { "override not a principal", "host: reviews\nperSource:\n  tokenBucket: {maxTokens: 10, fillInterval: 1s}\n  overrides: [{principal: productpage, tokenBucket: {maxTokens: 1, fillInterval: 1s}}]", "spec.perSource.overrides[0].principal" },
        { "override twice", "host: reviews\nperSource:\n  tokenBucket: {maxTokens: 10, fillInterval: 1s}\n  overrides: [{principal: td/ns/a/sa/b, tokenBucket: {maxTokens: 1, fillInterval: 1s}}, {principal: td/ns/a/sa/b, tokenBucket: {maxTokens: 2, fillInterval: 1s}}]", "spec.perSource.overrides[1].principal" },
        { "override without bucket", "host: reviews\nperSource:\n  tokenBucket: {maxTokens: 10, fillInterval: 1s}\n  overrides: [{principal: td/ns/a/sa/b}]", "spec.perSource.overrides[0].tokenBucket" },
        { "per source bad bucket", "host: reviews\nperSource: {tokenBucket: {maxTokens: 0, fillInterval: 1s}}", "spec.perSource.tokenBucket.maxTokens" },
        { "max tokens 0", "host: reviews\ntokenBucket: {maxTokens: 0, fillInterval: 1s}", "spec.tokenBucket.maxTokens" },
        { "no max tokens", "host: reviews\ntokenBucket: {fillInterval: 1s}", "spec.tokenBucket.maxTokens" },
        { "tokens per fill 0", "host: reviews\ntokenBucket: {maxTokens: 1, tokensPerFill: 0, fillInterval: 1s}", "spec.tokenBucket.tokensPerFill" },
        { "no fill interval", "host: reviews\ntokenBucket: {maxTokens: 1}", "spec.tokenBucket.fillInterval" },
        { "fill interval under 50ms", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 10ms}", "spec.tokenBucket.fillInterval" },
        { "status 200", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s}\nstatusCode: 200", "spec.statusCode" },
        { "status Envoy cannot send", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s}\nstatusCode: 499", "spec.statusCode" },
        { "match without uri", "host: reviews\nmatch: [{method: {exact: GET}}]\ntokenBucket: {maxTokens: 1, fillInterval: 1s}", "spec.match[0].method" },
        { "empty uri match", "host: reviews\nmatch: [{uri: {}}]\ntokenBucket: {maxTokens: 1, fillInterval: 1s}", "spec.match[0].uri" },
        { "two kinds in one uri", "host: reviews\nmatch: [{uri: {prefix: /a, exact: /b}}]\ntokenBucket: {maxTokens: 1, fillInterval: 1s}", "spec.match[0].uri" },
        { "bad regex", "host: reviews\nmatch: [{uri: {regex: '(unclosed'}}]\ntokenBucket: {maxTokens: 1, fillInterval: 1s}", "spec.match[0].uri.regex" },
        { "pseudo-header", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s}\nresponseHeaders: {':status': '200'}", "spec.responseHeaders" },
        { "bad header name", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s}\nresponseHeaders: {'a b': c}", "spec.responseHeaders" },
        { "unescaped percent", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s}\nresponseHeaders: {x-a: '100%'}", "spec.responseHeaders" },
        { "substitution", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s}\nresponseHeaders: {x-a: '%START_TIME%'}", "spec.responseHeaders" },
        { "unknown field", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 1s, burst: 5}", "spec.tokenBucket.burst" },
    };

    [Theory]
    [MemberData(nameof(HealthChecks))]
    public void Parse_HealthCheck_FollowsItsRules(string rule, string spec, string? errorField) => Check("HealthCheck", rule, spec, errorField);

    [Theory]
    [MemberData(nameof(RateLimits))]
    public void Parse_RateLimit_FollowsItsRules(string rule, string spec, string? errorField) => Check("RateLimit", rule, spec, errorField);

    [Fact]
    public void Parse_HealthCheck_AppliesKubernetesProbeDefaultsAndTheDefaultStatuses()
    {
        var check = Assert.IsType<HealthCheck>(Assert.Single(Parse("HealthCheck", "host: reviews\nhttp: {path: /healthz}").Resources));

        Assert.Equal(TimeSpan.FromSeconds(10), check.Interval);
        Assert.Equal(TimeSpan.FromSeconds(1), check.Timeout);
        Assert.Equal(1, check.HealthyThreshold);
        Assert.Equal(3, check.UnhealthyThreshold);
        Assert.Equal([(200, 299)], Assert.IsType<HttpHealthProbe>(check.Probe).ExpectedStatuses);
    }

    [Fact]
    public void Parse_WrongApiVersion_NamesTheOneToUse()
    {
        var parsed = ConfigFileParser.Parse("rl.yaml", "apiVersion: networking.istio.io/v1\nkind: RateLimit\nmetadata:\n  name: reviews\nspec:\n  host: reviews\n");

        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal("apiVersion", error.Field);
        Assert.Contains("bowline.dev/v1alpha1", error.Message, StringComparison.Ordinal);
        Assert.Equal("RateLimit default/reviews", error.Resource);
        Assert.Equal(1, error.Line);
    }

    [Fact]
    public void Parse_Error_NamesFileLineResourceFieldAndFix()
    {
        var parsed = Parse("RateLimit", "host: reviews\ntokenBucket: {maxTokens: 1, fillInterval: 10ms}");

        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal("rl.yaml:7: RateLimit default/reviews field spec.tokenBucket.fillInterval: 10ms is too short: Envoy's local rate limit needs at least 50ms; raise tokensPerFill instead", error.ToString()[7..]);
    }

    private static void Check(string kind, string rule, string spec, string? errorField) =>
        ValidationRows.Check("rl.yaml", ValidationRows.Resource("bowline.dev/v1alpha1", kind, spec), rule, errorField);

    private static ParsedFile Parse(string kind, string spec) =>
        ConfigFileParser.Parse("rl.yaml", ValidationRows.Resource("bowline.dev/v1alpha1", kind, spec));
}
