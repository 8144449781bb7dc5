using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>YAML as users bring it (kubectl output, annotations) and kinds Bowline must not pretend to enforce.</summary>
public sealed class ConfigFileParserCompatibilityTests
{
    [Fact]
    public void Parse_KubectlOutputWithAnnotationsAndManagedFields_IsAccepted()
    {
        var parsed = ConfigFileParser.Parse("svc.yaml", """
            apiVersion: v1
            kind: Service
            metadata:
              name: reviews
              namespace: default
              annotations:
                kubectl.kubernetes.io/last-applied-configuration: '{"apiVersion":"v1"}'
              managedFields:
              - manager: kubectl
                operation: Update
              ownerReferences: []
              uid: 0b9c
            spec:
              ports:
              - {name: http, port: 9080}
              selector: {app: reviews}
            """);

        Assert.Empty(parsed.Diagnostics);
        Assert.Single(parsed.Resources);
    }

    [Theory]
    [InlineData("networking.istio.io/v1", "Sidecar")]
    public void Parse_KindNotSupportedYet_IsAnErrorSayingItIsNotEnforced(string apiVersion, string kind)
    {
        var parsed = ConfigFileParser.Parse("policy.yaml", $$"""
            apiVersion: {{apiVersion}}
            kind: {{kind}}
            metadata: {name: deny-all, namespace: default}
            spec: {}
            """);

        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Contains("NOT enforced", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_WorkloadEntryWithAHostName_IsAnErrorNamingTheAddress()
    {
        var parsed = ConfigFileParser.Parse("we.yaml", """
            apiVersion: networking.istio.io/v1
            kind: WorkloadEntry
            metadata: {name: vm-1, namespace: default}
            spec:
              address: vm-1.example.com
              labels: {app: reviews}
            """);

        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal("spec.address", error.Field);
        Assert.Empty(parsed.Resources);
    }

    [Fact]
    public void Parse_RegexTheProxyEngineRejects_IsAnErrorAtParseTime()
    {
        var parsed = ConfigFileParser.Parse("vs.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata: {name: reviews, namespace: default}
            spec:
              hosts: [reviews]
              http:
              - match:
                - uri: {regex: "/(?=api)"}
                route:
                - destination: {host: reviews}
            """);

        Assert.Equal("spec.http[0].match[0].uri.regex", Assert.Single(parsed.Diagnostics).Field);
    }
}
