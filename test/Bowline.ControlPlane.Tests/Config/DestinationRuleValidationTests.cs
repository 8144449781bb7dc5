using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Istio's DestinationRule validation rules, one row each: rejected with an error on the named field, or accepted.</summary>
public sealed class DestinationRuleValidationTests
{
    public static TheoryData<string, string, string?> Specs => new()
    {
        { "empty host", "host: ''", "spec.host" },
        { "bad host", "host: 'reviews!'", "spec.host" },
        { "wildcard host", "host: '*.example.com'", null },
        { "empty traffic policy", "host: reviews\ntrafficPolicy: {}", "spec.trafficPolicy" },
        { "empty connection pool", "host: reviews\ntrafficPolicy: {connectionPool: {}}", "spec.trafficPolicy.connectionPool" },
        { "negative max connections", "host: reviews\ntrafficPolicy: {connectionPool: {tcp: {maxConnections: -1}}}", "spec.trafficPolicy.connectionPool.tcp.maxConnections" },
        { "negative pending requests", "host: reviews\ntrafficPolicy: {connectionPool: {http: {http1MaxPendingRequests: -1}}}", "spec.trafficPolicy.connectionPool.http.http1MaxPendingRequests" },
        { "negative max retries", "host: reviews\ntrafficPolicy: {connectionPool: {http: {maxRetries: -1}}}", "spec.trafficPolicy.connectionPool.http.maxRetries" },
        { "connect timeout 0", "host: reviews\ntrafficPolicy: {connectionPool: {tcp: {connectTimeout: 0s}}}", "spec.trafficPolicy.connectionPool.tcp.connectTimeout" },
        { "tcp idle timeout 0 disables it", "host: reviews\ntrafficPolicy: {connectionPool: {tcp: {idleTimeout: 0s}}}", null },
        { "upgrade with client protocol", "host: reviews\ntrafficPolicy: {connectionPool: {http: {h2UpgradePolicy: UPGRADE, useClientProtocol: true}}}", "spec.trafficPolicy.connectionPool.http.useClientProtocol" },
        { "full connection pool", "host: reviews\ntrafficPolicy: {connectionPool: {tcp: {maxConnections: 100, connectTimeout: 30ms, tcpKeepalive: {time: 7200s, interval: 75s, probes: 9}, maxConnectionDuration: 1h, idleTimeout: 5m}, http: {http1MaxPendingRequests: 10, http2MaxRequests: 100, maxRequestsPerConnection: 10, maxRetries: 3, idleTimeout: 1m, h2UpgradePolicy: UPGRADE, maxConcurrentStreams: 50}}}", null },
        { "max ejection percent 101", "host: reviews\ntrafficPolicy: {outlierDetection: {maxEjectionPercent: 101}}", "spec.trafficPolicy.outlierDetection.maxEjectionPercent" },
        { "min health percent -1", "host: reviews\ntrafficPolicy: {outlierDetection: {minHealthPercent: -1}}", "spec.trafficPolicy.outlierDetection.minHealthPercent" },
        { "local origin failures without split", "host: reviews\ntrafficPolicy: {outlierDetection: {consecutiveLocalOriginFailures: 5}}", "spec.trafficPolicy.outlierDetection.consecutiveLocalOriginFailures" },
        { "interval 0", "host: reviews\ntrafficPolicy: {outlierDetection: {interval: 0s}}", "spec.trafficPolicy.outlierDetection.interval" },
        { "full outlier detection", "host: reviews\ntrafficPolicy: {outlierDetection: {consecutive5xxErrors: 5, consecutiveGatewayErrors: 3, consecutiveLocalOriginFailures: 2, splitExternalLocalOriginErrors: true, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50, minHealthPercent: 20}}", null },
        { "unknown simple", "host: reviews\ntrafficPolicy: {loadBalancer: {simple: FASTEST}}", "spec.trafficPolicy.loadBalancer.simple" },
        { "cookie without name", "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpCookie: {ttl: 0s}}}}", "spec.trafficPolicy.loadBalancer.consistentHash.httpCookie.name" },
        { "maglev without table size", "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {}}}}", "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize" },
        { "maglev non-prime", "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 1000}}}}", "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize" },
        { "maglev too large", "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 5000011}}}}", "spec.trafficPolicy.loadBalancer.consistentHash.maglev.tableSize" },
        { "maglev prime", "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpHeaderName: x, maglev: {tableSize: 65537}}}}", null },
        { "deprecated ring size with ringHash", "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {useSourceIp: true, minimumRingSize: 10, ringHash: {minimumRingSize: 10}}}}", "spec.trafficPolicy.loadBalancer.consistentHash.minimumRingSize" },
        { "ring hash", "host: reviews\ntrafficPolicy: {loadBalancer: {consistentHash: {httpQueryParameterName: user, ringHash: {minimumRingSize: 2048}}}}", null },
        { "locality distribute and failover", "host: reviews\ntrafficPolicy: {outlierDetection: {}, loadBalancer: {localityLbSetting: {distribute: [{from: us-east/*, to: {us-east/*: 100}}], failover: [{from: us-east, to: us-west}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute" },
        { "locality failover to the same region", "host: reviews\ntrafficPolicy: {outlierDetection: {}, loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-east}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]" },
        { "locality failover names a zone", "host: reviews\ntrafficPolicy: {outlierDetection: {}, loadBalancer: {localityLbSetting: {failover: [{from: us-east/zone-a, to: us-west}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]" },
        { "locality failover wildcard", "host: reviews\ntrafficPolicy: {outlierDetection: {}, loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-*}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failover[0]" },
        { "locality failover with topology failoverPriority", "host: reviews\ntrafficPolicy: {outlierDetection: {}, loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-west}], failoverPriority: [topology.kubernetes.io/zone]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority" },
        { "locality distribute total not 100", "host: reviews\ntrafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: us-east/zone-a/*, to: {us-east/zone-a/*: 80, us-west/*: 10}}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to" },
        { "locality distribute weight 0", "host: reviews\ntrafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: us-east/*, to: {us-east/*: 100, us-west/*: 0}}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to" },
        { "locality distribute wildcard in the middle", "host: reviews\ntrafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: us-*/zone-a, to: {us-east/*: 100}}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from" },
        { "locality unknown field", "host: reviews\ntrafficPolicy: {loadBalancer: {localityLbSetting: {failovers: []}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failovers" },
        { "locality failover", "host: reviews\ntrafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}, loadBalancer: {localityLbSetting: {enabled: true, failover: [{from: us-east, to: us-west}, {from: us-west, to: us-east}]}}}", null },
        { "locality failoverPriority with failover", "host: reviews\ntrafficPolicy: {outlierDetection: {consecutive5xxErrors: 5}, loadBalancer: {localityLbSetting: {failoverPriority: [version, topology.istio.io/network], failover: [{from: us-east, to: us-west}]}}}", null },
        { "locality disabled", "host: reviews\ntrafficPolicy: {loadBalancer: {localityLbSetting: {enabled: false}}}", null },
        { "locality distribute", "host: reviews\ntrafficPolicy: {loadBalancer: {localityLbSetting: {distribute: [{from: us-east/zone-a/*, to: {us-east/zone-a/*: 80, us-west/*: 20}}]}}}", null },
        { "warmupDurationSecs under 1ms", "host: reviews\ntrafficPolicy: {loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 0s}}", "spec.trafficPolicy.loadBalancer.warmupDurationSecs" },
        { "warmupDurationSecs not a duration", "host: reviews\ntrafficPolicy: {loadBalancer: {warmupDurationSecs: 30}}", "spec.trafficPolicy.loadBalancer.warmupDurationSecs" },
        { "warmupDurationSecs", "host: reviews\ntrafficPolicy: {loadBalancer: {simple: LEAST_REQUEST, warmupDurationSecs: 1.5s}}", null },
        { "port policy without port", "host: reviews\ntrafficPolicy: {portLevelSettings: [{loadBalancer: {simple: RANDOM}}]}", "spec.trafficPolicy.portLevelSettings[0].port" },
        { "empty port policy", "host: reviews\ntrafficPolicy: {portLevelSettings: [{port: {number: 9080}}]}", "spec.trafficPolicy.portLevelSettings[0]" },
        { "retry budget above 100", "host: reviews\ntrafficPolicy: {retryBudget: {percent: 120}}", "spec.trafficPolicy.retryBudget.percent" },
        { "retry budget", "host: reviews\ntrafficPolicy: {retryBudget: {percent: 25, minRetryConcurrency: 5}}", null },
        { "bad subset name", "host: reviews\nsubsets: [{name: v_1, labels: {version: v1}}]", "spec.subsets[0].name" },
        { "bad subset label", "host: reviews\nsubsets: [{name: v1, labels: {version: 'v 1'}}]", "spec.subsets[0].labels" },
        { "duplicate subset", "host: reviews\nsubsets: [{name: v1}, {name: v1}]", "spec.subsets[1].name" },
        { "empty subset policy", "host: reviews\nsubsets: [{name: v1, trafficPolicy: {}}]", "spec.subsets[0].trafficPolicy" },
        { "exportTo duplicate", "host: reviews\nexportTo: [a, a]", "spec.exportTo" },
        { "tls unknown mode", "host: reviews\ntrafficPolicy: {tls: {mode: STRICT}}", "spec.trafficPolicy.tls.mode" },
        { "tls unknown field", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, verify: true}}", "spec.trafficPolicy.tls.verify" },
        { "tls without mode is DISABLE", "host: reviews\ntrafficPolicy: {tls: {}}", null },
        { "tls disable", "host: reviews\ntrafficPolicy: {tls: {mode: DISABLE}}", null },
        { "tls istio mutual", "host: reviews\ntrafficPolicy: {tls: {mode: ISTIO_MUTUAL, sni: reviews.internal, subjectAltNames: ['spiffe://cluster.local/ns/default/sa/reviews']}}", null },
        { "tls simple", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE}}", null },
        { "tls simple with roots and names", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, caCertificates: /etc/ca.pem, subjectAltNames: [reviews.example.com], sni: reviews.example.com}}", null },
        { "tls mutual without certificate", "host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, privateKey: /k.pem}}", "spec.trafficPolicy.tls.clientCertificate" },
        { "tls mutual without key", "host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c.pem}}", "spec.trafficPolicy.tls.privateKey" },
        { "tls mutual with files", "host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c.pem, privateKey: /k.pem}}", null },
        { "tls mutual with credential", "host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, credentialName: reviews-client}}", null },
        { "tls credential with files", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, credentialName: reviews-client, caCertificates: /ca.pem}}", "spec.trafficPolicy.tls.credentialName" },
        { "tls mutual credential with key", "host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, credentialName: reviews-client, privateKey: /k.pem}}", "spec.trafficPolicy.tls.credentialName" },
        { "tls simple insecure with roots", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, caCertificates: /ca.pem}}", "spec.trafficPolicy.tls.insecureSkipVerify" },
        { "tls simple insecure with credential", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, credentialName: x}}", "spec.trafficPolicy.tls.insecureSkipVerify" },
        { "tls simple insecure with names", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true, subjectAltNames: [a.example.com]}}", "spec.trafficPolicy.tls.insecureSkipVerify" },
        { "tls simple insecure", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: true}}", null },
        { "tls mutual insecure with names", "host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, insecureSkipVerify: true, clientCertificate: /c.pem, privateKey: /k.pem, subjectAltNames: [a.example.com]}}", "spec.trafficPolicy.tls.insecureSkipVerify" },
        { "tls mutual insecure with credential", "host: reviews\ntrafficPolicy: {tls: {mode: MUTUAL, insecureSkipVerify: true, credentialName: x}}", null },
        { "tls insecure not a bool", "host: reviews\ntrafficPolicy: {tls: {mode: SIMPLE, insecureSkipVerify: maybe}}", "spec.trafficPolicy.tls.insecureSkipVerify" },
        { "port tls mutual without certificate", "host: reviews\ntrafficPolicy: {portLevelSettings: [{port: {number: 9080}, tls: {mode: MUTUAL}}]}", "spec.trafficPolicy.portLevelSettings[0].tls.clientCertificate" },
        { "port tls only", "host: reviews\ntrafficPolicy: {portLevelSettings: [{port: {number: 9080}, tls: {mode: ISTIO_MUTUAL}}]}", null },
        { "subset tls mutual without key", "host: reviews\nsubsets: [{name: v1, trafficPolicy: {tls: {mode: MUTUAL, clientCertificate: /c.pem}}}]", "spec.subsets[0].trafficPolicy.tls.privateKey" },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_DestinationRule_FollowsIstiosValidation(string rule, string spec, string? errorField)
    {
        ValidationRows.Check("dr.yaml", ValidationRows.Resource("networking.istio.io/v1", "DestinationRule", spec), rule, errorField);
    }

    [Fact]
    public void Parse_Tls_IsReadIntoThePolicyPerSubsetAndPort()
    {
        var parsed = ConfigFileParser.Parse("dr.yaml", """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                tls: {mode: MUTUAL, clientCertificate: /etc/certs/client.pem, privateKey: /etc/certs/key.pem, caCertificates: /etc/certs/ca.pem, sni: reviews.example.com, subjectAltNames: [reviews.example.com]}
                loadBalancer: {localityLbSetting: {enabled: true}}
                portLevelSettings:
                - port: {number: 9080}
                  tls: {mode: DISABLE}
              subsets:
              - name: v1
                labels: {version: v1}
                trafficPolicy: {tls: {mode: ISTIO_MUTUAL}}
            """);

        Assert.Empty(parsed.Diagnostics);
        var rule = Assert.IsType<DestinationRule>(Assert.Single(parsed.Resources));
        var tls = rule.Policy!.Tls!;
        Assert.Equal(
            ("MUTUAL", "/etc/certs/client.pem", "/etc/certs/key.pem", "/etc/certs/ca.pem", "reviews.example.com", "reviews.example.com", false),
            (tls.Mode, tls.ClientCertificate, tls.PrivateKey, tls.CaCertificates, tls.Sni, Assert.Single(tls.SubjectAltNames), tls.InsecureSkipVerify));
        Assert.Equal(ClientTlsSettings.Disable, rule.Policy.PortLevelSettings.Single().Tls!.Mode);
        Assert.Equal(ClientTlsSettings.IstioMutual, rule.Subsets.Single().Policy!.Tls!.Mode);
        // Istio's precedence: a port-level policy replaces the rule's; a subset's tls overrides the rule's.
        Assert.Equal(ClientTlsSettings.Disable, TrafficPolicy.Effective(rule.Policy, null, 9080)!.Tls!.Mode);
        Assert.Equal(ClientTlsSettings.Mutual, TrafficPolicy.Effective(rule.Policy, null, 9081)!.Tls!.Mode);
        Assert.Equal(ClientTlsSettings.IstioMutual, TrafficPolicy.Effective(rule.Policy, rule.Subsets[0].Policy, 9080)!.Tls!.Mode);
    }

    [Theory]
    [InlineData("{mode: ISTIO_MUTUAL, clientCertificate: /c.pem}", "spec.trafficPolicy.tls.clientCertificate", "ignored with ISTIO_MUTUAL")]
    [InlineData("{mode: SIMPLE, caCrl: /crl.pem}", "spec.trafficPolicy.tls.caCrl", "not supported")]
    public void Parse_TlsFieldWithoutEffect_IsAWarningNamingTheField(string tls, string field, string message)
    {
        var parsed = ConfigFileParser.Parse("dr.yaml", $"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy: {{tls: {tls}}}\n");

        Assert.False(parsed.HasErrors, string.Join("\n", parsed.Diagnostics));
        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal((DiagnosticSeverity.Warning, field), (warning.Severity, warning.Field));
        Assert.Contains(message, warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{loadBalancer: {localityLbSetting: {failover: [{from: us-east, to: us-west}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failover", "outlierDetection")]
    [InlineData("{loadBalancer: {localityLbSetting: {failoverPriority: [version]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.failoverPriority", "outlierDetection")]
    [InlineData("{loadBalancer: {localityLbSetting: {distribute: [{from: us-east/zone*, to: {us-west/*: 100}}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].from", "matches no locality")]
    [InlineData("{loadBalancer: {localityLbSetting: {distribute: [{from: us-east/*, to: {us-*: 100}}]}}}", "spec.trafficPolicy.loadBalancer.localityLbSetting.distribute[0].to", "'us-*' matches no locality")]
    [InlineData("{loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 10s, warmup: {duration: 10s}}}", "spec.trafficPolicy.loadBalancer.warmupDurationSecs", "Istio uses warmup")]
    public void Parse_LocalitySettingWithoutEffect_IsAWarningNamingTheField(string trafficPolicy, string field, string message)
    {
        var parsed = ConfigFileParser.Parse("dr.yaml", $"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy: {trafficPolicy}\n");

        Assert.False(parsed.HasErrors, string.Join("\n", parsed.Diagnostics));
        var warning = Assert.Single(parsed.Diagnostics, d => d.Field == field);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.Contains(message, warning.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("{loadBalancer: {localityLbSetting: {distribute: [{from: us-east/*, to: {us-east/zone-a: 70, us-west/*: 30}}]}}}")]
    [InlineData("{loadBalancer: {simple: ROUND_ROBIN, warmupDurationSecs: 30s}}")]
    [InlineData("{loadBalancer: {warmupDurationSecs: 1m}}")]
    public void Parse_SupportedLoadBalancerSetting_HasNoDiagnostic(string trafficPolicy)
    {
        var parsed = ConfigFileParser.Parse("dr.yaml", $"apiVersion: networking.istio.io/v1\nkind: DestinationRule\nmetadata: {{name: reviews}}\nspec:\n  host: reviews\n  trafficPolicy: {trafficPolicy}\n");

        Assert.Empty(parsed.Diagnostics);
        Assert.Single(parsed.Resources);
    }

    [Fact]
    public void Parse_Distribute_IsReadIntoTheModelInTheOrderWritten()
    {
        var rule = Assert.IsType<DestinationRule>(Assert.Single(ConfigFileParser.Parse("dr.yaml", """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata: {name: reviews}
            spec:
              host: reviews
              trafficPolicy:
                loadBalancer:
                  warmupDurationSecs: 90s
                  localityLbSetting:
                    distribute:
                    - {from: us-west/*, to: {us-west/zone-c: 60, us-east/*: 40}}
                    - {from: '*', to: {us-east: 100}}
            """).Resources));

        var lb = rule.Policy!.LoadBalancer!;
        Assert.Equal(TimeSpan.FromSeconds(90), lb.WarmupDuration);
        Assert.Equal(
            [("us-west/*", "us-west/zone-c=60,us-east/*=40"), ("*", "us-east=100")],
            lb.Locality!.Distribute.Select(d => (d.From, string.Join(",", d.To.Select(t => $"{t.Locality}={t.Weight}")))));
    }
}
