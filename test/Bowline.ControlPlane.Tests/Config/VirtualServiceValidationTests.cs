using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>
/// Istio's VirtualService validation rules (pkg/config/validation), one row each: the HTTP route Istio rejects is an
/// error on the named field; the one it accepts loads (a warning at most).
/// </summary>
public sealed class VirtualServiceValidationTests
{
    /// <summary>An HTTP route body (YAML under <c>- </c>, indented by 2) and the field of the expected error, or null when Istio accepts it.</summary>
    public static TheoryData<string, string, string?> Routes => new()
    {
        // Retries
        { "negative attempts", "retries: {attempts: -1}\nroute: [{destination: {host: reviews}}]", "spec.http[0].retries.attempts" },
        { "attempts 0 with retryOn", "retries: {attempts: 0, retryOn: 5xx}\nroute: [{destination: {host: reviews}}]", "spec.http[0].retries.attempts" },
        { "attempts 0 with retryRemoteLocalities", "retries: {attempts: 0, retryRemoteLocalities: true}\nroute: [{destination: {host: reviews}}]", "spec.http[0].retries.attempts" },
        { "retryRemoteLocalities", "retries: {attempts: 2, retryRemoteLocalities: true}\nroute: [{destination: {host: reviews}}]", null },
        { "attempts 0 alone turns retries off", "retries: {attempts: 0}\nroute: [{destination: {host: reviews}}]", null },
        { "unknown retry condition", "retries: {attempts: 3, retryOn: '5xx,bogus'}\nroute: [{destination: {host: reviews}}]", "spec.http[0].retries.retryOn" },
        { "space after comma is not trimmed", "retries: {attempts: 3, retryOn: '5xx, reset'}\nroute: [{destination: {host: reviews}}]", "spec.http[0].retries.retryOn" },
        { "status codes and gRPC conditions", "retries: {attempts: 3, retryOn: '503,gateway-error,unavailable', perTryTimeout: 2s}\nroute: [{destination: {host: reviews}}]", null },
        { "unknown status number", "retries: {attempts: 3, retryOn: '599'}\nroute: [{destination: {host: reviews}}]", "spec.http[0].retries.retryOn" },
        { "perTryTimeout under 1ms", "retries: {attempts: 3, perTryTimeout: 0.5ms}\nroute: [{destination: {host: reviews}}]", "spec.http[0].retries.perTryTimeout" },
        // Timeouts
        { "timeout 0s", "timeout: 0s\nroute: [{destination: {host: reviews}}]", "spec.http[0].timeout" },
        { "timeout with sub-ms precision", "timeout: 1500us\nroute: [{destination: {host: reviews}}]", "spec.http[0].timeout" },
        // Fault
        { "abort status 9000", "fault: {abort: {httpStatus: 9000, percentage: {value: 10}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault.abort.httpStatus" },
        { "abort status 199", "fault: {abort: {httpStatus: 199, percentage: {value: 10}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault.abort.httpStatus" },
        { "unknown gRPC status", "fault: {abort: {grpcStatus: NOPE, percentage: {value: 10}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault.abort.grpcStatus" },
        { "gRPC status name", "fault: {abort: {grpcStatus: UNAVAILABLE, percentage: {value: 10}}}\nroute: [{destination: {host: reviews}}]", null },
        { "http2Error abort", "fault: {abort: {http2Error: CANCEL}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault.abort.http2Error" },
        { "empty fault", "fault: {}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault" },
        { "percentage above 100", "fault: {delay: {fixedDelay: 1s, percentage: {value: 101}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault.delay.percentage" },
        { "percentage below Envoy's resolution", "fault: {delay: {fixedDelay: 1s, percentage: {value: 0.00001}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault.delay.percentage" },
        { "exponential delay", "fault: {delay: {exponentialDelay: 1s}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].fault.delay.exponentialDelay" },
        { "fixed delay", "fault: {delay: {fixedDelay: 7s, percentage: {value: 0.1}}}\nroute: [{destination: {host: reviews}}]", null },
        // Route shape
        { "nothing to do", "timeout: 1s", "spec.http[0].route" },
        { "route and redirect", "redirect: {uri: /x}\nroute: [{destination: {host: reviews}}]", "spec.http[0].route" },
        { "redirect and fault", "redirect: {uri: /x}\nfault: {abort: {httpStatus: 500}}", "spec.http[0].fault" },
        { "directResponse and route", "directResponse: {status: 200}\nroute: [{destination: {host: reviews}}]", "spec.http[0].route" },
        { "directResponse and rewrite", "directResponse: {status: 200}\nrewrite: {uri: /}", "spec.http[0].rewrite" },
        { "delegate and route", "delegate: {name: reviews-delegate}\nroute: [{destination: {host: reviews}}]", "spec.http[0].route" },
        { "delegate alone", "delegate: {name: reviews-delegate}", null },
        // Redirect
        { "empty redirect", "redirect: {}", "spec.http[0].redirect" },
        { "redirect code 200", "redirect: {uri: /x, redirectCode: 200}", "spec.http[0].redirect.redirectCode" },
        { "redirect scheme ftp", "redirect: {scheme: ftp}", "spec.http[0].redirect.scheme" },
        { "redirect port and derivePort", "redirect: {port: 8080, derivePort: FROM_REQUEST_PORT}", "spec.http[0].redirect" },
        { "redirect uri and prefixRewrite", "redirect: {uri: /a, prefixRewrite: /b}", "spec.http[0].redirect" },
        { "prefixRewrite with an exact match", "match: [{uri: {exact: /a}}]\nredirect: {prefixRewrite: /b}", "spec.http[0].redirect.prefixRewrite" },
        { "redirect to https on 8443", "redirect: {scheme: https, port: 8443, authority: example.com, redirectCode: 308}", null },
        { "redirect deriving the port", "redirect: {derivePort: FROM_REQUEST_PORT}", null },
        // Direct response
        { "direct response status 9000", "directResponse: {status: 9000}", "spec.http[0].directResponse.status" },
        { "direct response without status", "directResponse: {body: {string: hi}}", "spec.http[0].directResponse.status" },
        { "direct response with bytes", "directResponse: {status: 503, body: {bytes: aGVsbG8=}}", null },
        // Rewrite
        { "empty rewrite", "rewrite: {}\nroute: [{destination: {host: reviews}}]", "spec.http[0].rewrite" },
        { "uri and uriRegexRewrite", "rewrite: {uri: /a, uriRegexRewrite: {match: ^/a, rewrite: /b}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].rewrite" },
        { "uriRegexRewrite without rewrite", "rewrite: {uriRegexRewrite: {match: ^/a}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].rewrite.uriRegexRewrite" },
        { "uriRegexRewrite bad regex", "rewrite: {uriRegexRewrite: {match: '(', rewrite: /b}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].rewrite.uriRegexRewrite.match" },
        { "authority twice", "rewrite: {authority: a.example}\nheaders: {request: {set: {':authority': b.example}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].headers" },
        // Headers
        { "pseudo-header set", "headers: {request: {set: {':path': /x}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].headers.request.set.:path" },
        { "host removed", "headers: {request: {remove: [Host]}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].headers.request.remove" },
        { "unescaped percent", "headers: {response: {add: {x-rate: '100%'}}}\nroute: [{destination: {host: reviews}}]", "spec.http[0].headers.response.add.x-rate" },
        { "escaped percent and variable", "headers: {response: {set: {x-rate: '100%%', x-host: '%HOSTNAME%'}}}\nroute: [{destination: {host: reviews}}]", null },
        { "destination headers", "route: [{destination: {host: reviews}, headers: {request: {add: {x-v: '1'}}}}]", null },
        // Mirrors
        { "mirror and mirrors", "mirror: {host: a}\nmirrors: [{destination: {host: b}}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].mirrors" },
        { "mirrorPercentage above 100", "mirror: {host: a}\nmirrorPercentage: {value: 150}\nroute: [{destination: {host: reviews}}]", "spec.http[0].mirrorPercentage" },
        { "deprecated mirrorPercent", "mirror: {host: a}\nmirrorPercent: 50\nroute: [{destination: {host: reviews}}]", null },
        { "mirrors with percentage", "mirrors: [{destination: {host: a}, percentage: {value: 25}}]\nroute: [{destination: {host: reviews}}]", null },
        // CORS
        { "CORS bad method", "corsPolicy: {allowMethods: [FETCH]}\nroute: [{destination: {host: reviews}}]", "spec.http[0].corsPolicy.allowMethods" },
        { "CORS empty origin", "corsPolicy: {allowOrigins: [{exact: ''}]}\nroute: [{destination: {host: reviews}}]", "spec.http[0].corsPolicy.allowOrigins[0].exact" },
        { "CORS maxAge fraction", "corsPolicy: {maxAge: 1500ms}\nroute: [{destination: {host: reviews}}]", "spec.http[0].corsPolicy.maxAge" },
        { "CORS bad header", "corsPolicy: {allowHeaders: ['bad header']}\nroute: [{destination: {host: reviews}}]", "spec.http[0].corsPolicy.allowHeaders" },
        { "CORS full", "corsPolicy: {allowOrigins: [{prefix: 'https://'}], allowMethods: [GET, POST], allowHeaders: ['*'], exposeHeaders: [x-id], maxAge: 24h, allowCredentials: true, unmatchedPreflights: IGNORE}\nroute: [{destination: {host: reviews}}]", null },
        // Destinations and weights
        { "negative weight", "route: [{destination: {host: a}, weight: -1}, {destination: {host: b}, weight: 1}]", "spec.http[0].route[0].weight" },
        { "all weights 0", "route: [{destination: {host: a}, weight: 0}, {destination: {host: b}, weight: 0}]", "spec.http[0].route" },
        { "weights need not add to 100", "route: [{destination: {host: a}, weight: 1000}, {destination: {host: b}, weight: 1}]", null },
        { "destination host *", "route: [{destination: {host: '*'}}]", "spec.http[0].route[0].destination.host" },
        { "bad destination host", "route: [{destination: {host: 'bad_host'}}]", "spec.http[0].route[0].destination.host" },
        { "bad subset name", "route: [{destination: {host: reviews, subset: 'V_1'}}]", "spec.http[0].route[0].destination.subset" },
        { "destination port 0", "route: [{destination: {host: reviews, port: {number: 0}}}]", "spec.http[0].route[0].destination.port.number" },
        // Matches
        { "empty prefix on a header", "match: [{headers: {x-a: {prefix: ''}}}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].headers.x-a.prefix" },
        { "empty prefix on the uri", "match: [{uri: {prefix: ''}}]\nroute: [{destination: {host: reviews}}]", null },
        { "null header match", "match: [{headers: {x-a: }}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].headers.x-a" },
        { "presence header match", "match: [{headers: {x-a: {}}, withoutHeaders: {x-b: {}}, queryParams: {q: {}}}]\nroute: [{destination: {host: reviews}}]", null },
        { "regex * in withoutHeaders", "match: [{withoutHeaders: {x-b: {regex: '*'}}}]\nroute: [{destination: {host: reviews}}]", null },
        { "regex * in headers", "match: [{headers: {x-b: {regex: '*'}}}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].headers.x-b.regex" },
        { "bad header name", "match: [{headers: {'x a': {exact: b}}}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].headers.x a" },
        { "JWT claim outside a gateway", "match: [{headers: {'@request.auth.claims.group': {exact: admin}}}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].headers.@request.auth.claims.group" },
        { "regex too long", $"match: [{{uri: {{regex: '{new string('a', 1025)}'}}}}]\nroute: [{{destination: {{host: reviews}}}}]", "spec.http[0].match[0].uri.regex" },
        { "two kinds in one match", "match: [{uri: {exact: /a, prefix: /b}}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].uri" },
        { "bad sourceNamespace", "match: [{sourceNamespace: Bad_NS}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].sourceNamespace" },
        { "bad sourceLabels", "match: [{sourceLabels: {'bad key!': v1}}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].sourceLabels" },
        { "bad match gateway", "match: [{gateways: ['a/b/c']}]\nroute: [{destination: {host: reviews}}]", "spec.http[0].match[0].gateways" },
        { "every match condition", "match: [{name: m, uri: {regex: '/v[0-9]+/.*'}, scheme: {exact: http}, method: {exact: GET}, authority: {prefix: reviews}, headers: {end-user: {exact: jason}}, withoutHeaders: {x-debug: {exact: '1'}}, queryParams: {v: {regex: '[0-9]+'}}, ignoreUriCase: true, port: 9080, sourceLabels: {app: productpage}, sourceNamespace: default, statPrefix: s}]\nroute: [{destination: {host: reviews}}]", null },
    };

    [Theory]
    [MemberData(nameof(Routes))]
    public void Parse_HttpRoute_FollowsIstiosValidation(string rule, string route, string? errorField)
    {
        var parsed = ValidationRows.Check("vs.yaml", VirtualServiceYaml(route), rule, errorField);
        if (errorField is null)
        {
            return;
        }
        var error = parsed.Diagnostics.First(e => e.Field == errorField);
        Assert.Equal("VirtualService default/reviews", error.Resource);
        Assert.True(error.Line > 0);
    }

    public static TheoryData<string, string, string?> Specs => new()
    {
        { "no hosts and gateways (a delegate cannot name gateways)", "gateways: [gw]\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.gateways" },
        { "a delegate", "http: [{route: [{destination: {host: reviews}}]}]", null },
        { "wildcard * for the mesh", "hosts: ['*']\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.hosts" },
        { "wildcard * on a gateway", "hosts: ['*']\ngateways: [gw]\nhttp: [{route: [{destination: {host: reviews}}]}]", null },
        { "invalid host", "hosts: ['bad_host']\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.hosts" },
        { "numeric top-level domain", "hosts: ['reviews.123']\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.hosts" },
        { "an IP host", "hosts: ['10.0.0.1']\nhttp: [{route: [{destination: {host: reviews}}]}]", null },
        { "overlapping hosts", "hosts: ['*.example.com', 'a.example.com']\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.hosts" },
        { "no routes at all", "hosts: [reviews]", "spec.http" },
        { "exportTo duplicate", "hosts: [reviews]\nexportTo: ['.', default]\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.exportTo" },
        { "exportTo * and more", "hosts: [reviews]\nexportTo: ['*', other]\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.exportTo" },
        { "exportTo namespaces", "hosts: [reviews]\nexportTo: ['.', other]\nhttp: [{route: [{destination: {host: reviews}}]}]", null },
        { "bad gateway reference", "hosts: [reviews]\ngateways: ['ns/Bad_Name']\nhttp: [{route: [{destination: {host: reviews}}]}]", "spec.gateways" },
        { "route in a delegate delegating", "http: [{delegate: {name: x}}]", "spec.http[0].delegate" },
        // TCP routes (validateTCPRoute)
        { "tcp route", "hosts: [mysql]\ntcp: [{match: [{port: 3306, sourceLabels: {app: web}, sourceNamespace: default, destinationSubnets: [10.0.0.0/16, 10.1.2.3]}], route: [{destination: {host: mysql, port: {number: 3306}}}]}]", null },
        { "tcp route without destinations", "hosts: [mysql]\ntcp: [{match: [{port: 3306}]}]", "spec.tcp[0].route" },
        { "tcp route with a bad subnet", "hosts: [mysql]\ntcp: [{match: [{destinationSubnets: [10.0.0.0/33]}], route: [{destination: {host: mysql}}]}]", "spec.tcp[0].match[0].destinationSubnets" },
        { "tcp route with port 0", "hosts: [mysql]\ntcp: [{match: [{port: 0}], route: [{destination: {host: mysql}}]}]", "spec.tcp[0].match[0].port" },
        { "tcp route with all weights 0", "hosts: [mysql]\ntcp: [{route: [{destination: {host: mysql, subset: a}, weight: 0}, {destination: {host: mysql, subset: b}, weight: 0}]}]", "spec.tcp[0].route" },
        { "tcp route with weights 1000:1", "hosts: [mysql]\ntcp: [{route: [{destination: {host: mysql, subset: a}, weight: 1000}, {destination: {host: mysql, subset: b}, weight: 1}]}]", null },
        { "tcp route with headers (an HTTP field)", "hosts: [mysql]\ntcp: [{route: [{destination: {host: mysql}, headers: {request: {set: {a: b}}}}]}]", "spec.tcp[0].route[0].headers" },
        { "tcp route in a delegate", "tcp: [{route: [{destination: {host: mysql}}]}]", "spec.tcp" },
        // TLS routes (validateTLSRoute, validateSniHost)
        { "tls route", "hosts: ['*.example.com']\ngateways: [gw]\ntls: [{match: [{sniHosts: [a.example.com], port: 443}], route: [{destination: {host: a.default.svc.cluster.local}}]}]", null },
        { "tls route without a match", "hosts: [a.example.com]\ngateways: [gw]\ntls: [{route: [{destination: {host: a}}]}]", "spec.tls[0].match" },
        { "tls match without sniHosts", "hosts: [a.example.com]\ngateways: [gw]\ntls: [{match: [{port: 443}], route: [{destination: {host: a}}]}]", "spec.tls[0].match[0].sniHosts" },
        { "sni host outside the hosts", "hosts: [a.example.com]\ngateways: [gw]\ntls: [{match: [{sniHosts: [b.example.com]}], route: [{destination: {host: a}}]}]", "spec.tls[0].match[0].sniHosts" },
        { "sni host under a wildcard host", "hosts: ['*.example.com']\ngateways: [gw]\ntls: [{match: [{sniHosts: ['*.a.example.com']}], route: [{destination: {host: a}}]}]", null },
        { "sni host * for the mesh", "hosts: [a.example.com]\ntls: [{match: [{sniHosts: ['*']}], route: [{destination: {host: a}}]}]", "spec.tls[0].match[0].sniHosts" },
        { "sni host * on a gateway", "hosts: ['*']\ngateways: [gw]\ntls: [{match: [{sniHosts: ['*']}], route: [{destination: {host: a}}]}]", null },
        { "an IP sni host is a warning", "hosts: ['*']\ngateways: [gw]\ntls: [{match: [{sniHosts: ['10.0.0.1']}], route: [{destination: {host: a}}]}]", null },
        { "tls route without destinations", "hosts: [a.example.com]\ngateways: [gw]\ntls: [{match: [{sniHosts: [a.example.com]}]}]", "spec.tls[0].route" },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_VirtualServiceSpec_FollowsIstiosValidation(string rule, string spec, string? errorField)
    {
        ValidationRows.Check("vs.yaml", ValidationRows.Resource("networking.istio.io/v1", "VirtualService", spec), rule, errorField, acceptedLoadsOne: false);
    }

    [Theory]
    [InlineData("true", true)]
    [InlineData("false", false)]
    public void Parse_RetryRemoteLocalities_IsReadWithoutADiagnostic(string value, bool expected)
    {
        var parsed = ConfigFileParser.Parse("vs.yaml", VirtualServiceYaml($"retries: {{attempts: 2, retryRemoteLocalities: {value}}}\nroute: [{{destination: {{host: reviews}}}}]"));

        Assert.Empty(parsed.Diagnostics);
        var vs = Assert.IsType<VirtualService>(Assert.Single(parsed.Resources));
        Assert.Equal(expected, vs.Http.Single().Retries!.RetryRemoteLocalities);
    }

    [Fact]
    public void Parse_EveryRouteFeature_IsReadIntoTheModel()
    {
        var vs = Assert.IsType<VirtualService>(Assert.Single(ConfigFileParser.Parse("vs.yaml", VirtualServiceYaml("""
            name: r
            match: [{uri: {prefix: /api}, headers: {x-a: {}}, withoutHeaders: {x-b: {exact: '1'}}, ignoreUriCase: true, sourceLabels: {app: productpage}}]
            retries: {attempts: 3, perTryTimeout: 2s, retryOn: 'gateway-error,503'}
            fault: {delay: {fixedDelay: 5s, percentage: {value: 10}}, abort: {grpcStatus: UNAVAILABLE, percentage: {value: 0.5}}}
            mirror: {host: reviews, subset: v2}
            mirrorPercentage: {value: 12.5}
            headers: {request: {set: {x-s: a}, add: {x-a: b}, remove: [x-r]}, response: {remove: [server]}}
            rewrite: {uri: /v2, authority: reviews.internal}
            corsPolicy: {allowOrigins: [{exact: 'https://a.example'}], allowMethods: [GET], maxAge: 1h}
            route:
            - destination: {host: reviews, subset: v1}
              weight: 3
            - destination: {host: reviews, subset: v2}
              weight: 1
              headers: {response: {set: {x-v: v2}}}
            """)).Resources));

        var route = Assert.Single(vs.Http);
        var match = Assert.Single(route.Matches);
        Assert.Null(match.Headers["x-a"]);
        Assert.Equal(new StringMatch(StringMatch.Exact, "1"), match.WithoutHeaders["x-b"]);
        Assert.True(match.IgnoreUriCase);
        Assert.Equal("productpage", match.SourceLabels["app"]);
        Assert.Equal(new HttpRetry(3, TimeSpan.FromSeconds(2), "gateway-error,503", null, null), route.Retries);
        Assert.Equal(14, route.Fault!.Abort!.GrpcStatus);
        Assert.Equal(new HttpMirror("reviews", "v2", null, 12.5), Assert.Single(route.Mirrors));
        Assert.Equal("x-r", Assert.Single(route.Headers!.Request.Remove));
        Assert.Equal(new HttpRewrite("/v2", null, "reviews.internal"), route.Rewrite);
        Assert.Equal(TimeSpan.FromHours(1), route.Cors!.MaxAge);
        Assert.True(route.Cors.ForwardUnmatchedPreflights);
        Assert.Equal([3, 1], route.Destinations.Select(d => d.Weight));
        Assert.Equal("x-v", route.Destinations[1].Headers!.Response.Set.Single().Key);
    }

    internal static string VirtualServiceYaml(string route) =>
        "apiVersion: networking.istio.io/v1\nkind: VirtualService\nmetadata:\n  name: reviews\nspec:\n  hosts: [reviews]\n  http:\n  - " + ValidationRows.Indent(route, "    ").TrimStart();

}
