using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;

namespace Bowline.ControlPlane.Tests.Config;

public sealed class ConfigFileParserTests
{
    public static TheoryData<string> BookinfoFiles => new()
    {
        "services.yaml",
        "workloads.yaml",
        "destination-rule-all.yaml",
        "bookinfo-gateway.yaml",
        "tasks/virtual-service-all-v1.yaml",
        "tasks/virtual-service-reviews-50-v3.yaml",
        "tasks/virtual-service-reviews-80-20.yaml",
        "tasks/virtual-service-reviews-jason-v2-v3.yaml",
        "tasks/virtual-service-reviews-test-v2.yaml",
        "tasks/virtual-service-reviews-v3.yaml",
    };

    [Theory]
    [MemberData(nameof(BookinfoFiles))]
    public void Parse_BookinfoSample_HasNoDiagnostics(string file)
    {
        var parsed = ConfigFileParser.Parse(file, File.ReadAllText(TestFiles.Bookinfo(file)));

        Assert.Empty(parsed.Diagnostics);
        Assert.NotEmpty(parsed.Resources);
    }

    [Fact]
    public void Parse_FaultInjectionTasks_ReadTheDelayAndAbortWithoutDiagnostics()
    {
        var delayFile = ConfigFileParser.Parse("delay", File.ReadAllText(TestFiles.Bookinfo("tasks/virtual-service-ratings-test-delay.yaml")));
        var abortFile = ConfigFileParser.Parse("abort", File.ReadAllText(TestFiles.Bookinfo("tasks/virtual-service-ratings-test-abort.yaml")));

        Assert.Empty(delayFile.Diagnostics);
        Assert.Empty(abortFile.Diagnostics);
        var delay = Assert.IsType<VirtualService>(Assert.Single(delayFile.Resources)).Http[0].Fault!.Delay!;
        Assert.Equal((TimeSpan.FromSeconds(7), 100.0), (delay.FixedDelay, delay.Percentage!.Value));
        var abort = Assert.IsType<VirtualService>(Assert.Single(abortFile.Resources)).Http[0].Fault!.Abort!;
        Assert.Equal(500, abort.HttpStatus);
        Assert.Equal(100.0, abort.Percent);
    }

    [Fact]
    public void Parse_BookinfoSamples_YieldEveryKindTheyDeclare()
    {
        var resources = TestFiles.ParseBookinfo("services.yaml", "workloads.yaml", "destination-rule-all.yaml", "bookinfo-gateway.yaml");

        Assert.Equal(["details", "ratings", "reviews", "productpage"], resources.OfType<KubernetesService>().Select(s => s.Meta.Name));
        Assert.Equal(6, resources.OfType<Workload>().Count());
        Assert.Equal(4, resources.OfType<DestinationRule>().Count());
        Assert.Single(resources.OfType<Gateway>());
        Assert.Single(resources.OfType<VirtualService>());

        var reviews = resources.OfType<KubernetesService>().Single(s => s.Meta.Name == "reviews");
        Assert.Equal("default", reviews.Meta.Namespace);
        Assert.Equal(new ServicePort(9080, "http", null, "HTTP"), Assert.Single(reviews.Ports));
        Assert.Equal("reviews", reviews.Selector["app"]);

        var rule = resources.OfType<DestinationRule>().Single(r => r.Meta.Name == "reviews");
        Assert.Equal("reviews", rule.Host);
        Assert.Equal(["v1", "v2", "v3"], rule.Subsets.Select(s => s.Name));
        Assert.Equal("v2", rule.Subsets[1].Labels["version"]);

        var gateway = resources.OfType<Gateway>().Single();
        Assert.Equal("ingressgateway", gateway.Selector["istio"]);
        var server = Assert.Single(gateway.Servers);
        Assert.Equal((8080, "http", "HTTP"), (server.Port, server.PortName, server.Protocol));
        Assert.Equal(["*"], server.Hosts);

        var bookinfo = resources.OfType<VirtualService>().Single();
        Assert.Equal(["bookinfo-gateway"], bookinfo.Gateways);
        Assert.False(bookinfo.AppliesToMesh);
        var route = Assert.Single(bookinfo.Http);
        Assert.Equal(5, route.Matches.Count);
        Assert.Equal(new StringMatch(StringMatch.Exact, "/productpage"), route.Matches[0].Uri);
        Assert.Equal(new StringMatch(StringMatch.Prefix, "/static"), route.Matches[1].Uri);
        Assert.Equal(new RouteDestination("productpage", null, 9080, 100), Assert.Single(route.Destinations));

        var reviewsV2 = resources.OfType<Workload>().Single(w => w.Meta.Name == "reviews-v2");
        Assert.Equal("src/Bookinfo.csproj", reviewsV2.Project);
        Assert.Equal(["reviews"], reviewsV2.Args);
        Assert.Contains(new WorkloadEnv("SERVICE_VERSION", "v2"), reviewsV2.Env);
        Assert.Equal([9080], reviewsV2.ContainerPorts);
    }

    [Fact]
    public void Parse_HeaderMatchAndWeights_ReadAsIstioDefinesThem()
    {
        var jason = Assert.IsType<VirtualService>(Assert.Single(TestFiles.ParseBookinfo("tasks/virtual-service-reviews-test-v2.yaml")));
        var split = Assert.IsType<VirtualService>(Assert.Single(TestFiles.ParseBookinfo("tasks/virtual-service-reviews-80-20.yaml")));

        Assert.True(jason.AppliesToMesh);
        Assert.Equal(new StringMatch(StringMatch.Exact, "jason"), jason.Http[0].Matches[0].Headers["end-user"]);
        Assert.Equal(new RouteDestination("reviews", "v2", null, 100), jason.Http[0].Destinations.Single());
        Assert.Empty(jason.Http[1].Matches);
        Assert.Equal([80, 20], split.Http[0].Destinations.Select(d => d.Weight));
        Assert.Equal(["v1", "v2"], split.Http[0].Destinations.Select(d => d.Subset));
    }

    [Fact]
    public void Parse_WorkloadEntry_ReadsAddressPortsLabelsAndWeight()
    {
        var entry = Assert.IsType<WorkloadEntry>(Assert.Single(TestFiles.ParseValid("we.yaml", """
            apiVersion: networking.istio.io/v1beta1
            kind: WorkloadEntry
            metadata:
              name: reviews-v2
              namespace: bookinfo
            spec:
              address: 10.0.0.7
              ports:
                http: 19080
              labels:
                app: reviews
                version: v2
              serviceAccount: bookinfo-reviews
              weight: 3
            """)));

        Assert.Equal("bookinfo", entry.Meta.Namespace);
        Assert.Equal("10.0.0.7", entry.Address);
        Assert.Equal(19080, entry.Ports["http"]);
        Assert.Equal("v2", entry.WorkloadLabels["version"]);
        Assert.Equal("bookinfo-reviews", entry.ServiceAccount);
        Assert.Equal(3, entry.Weight);
    }

    [Fact]
    public void Parse_ServiceEntry_ReadsHostsPortsAndInlineEndpoints()
    {
        var entry = Assert.IsType<ServiceEntry>(Assert.Single(TestFiles.ParseValid("se.yaml", """
            apiVersion: networking.istio.io/v1alpha3
            kind: ServiceEntry
            metadata:
              name: legacy
            spec:
              hosts:
              - legacy.example.internal
              location: MESH_INTERNAL
              ports:
              - number: 8080
                name: grpc-api
                protocol: GRPC
                targetPort: 9090
              resolution: STATIC
              endpoints:
              - address: 10.1.2.3
                labels:
                  version: v1
              - address: 10.1.2.4
                ports:
                  grpc-api: 9191
                weight: 2
            """)));

        Assert.Equal(["legacy.example.internal"], entry.Hosts);
        var port = Assert.Single(entry.Ports);
        Assert.Equal(new ServicePort(8080, "grpc-api", 9090, "GRPC"), port);
        Assert.True(port.IsHttp2);
        Assert.Equal("STATIC", entry.Resolution);
        Assert.Equal(["10.1.2.3", "10.1.2.4"], entry.Endpoints.Select(e => e.Address));
        Assert.Equal(9191, entry.Endpoints[1].Ports["grpc-api"]);
        Assert.Equal(2, entry.Endpoints[1].Weight);
        Assert.Null(entry.WorkloadSelector);
    }

    [Fact]
    public void Parse_InvalidYaml_OneErrorWithLineAndNothingApplied()
    {
        const string yaml = """
            apiVersion: v1
            kind: Service
            metadata:
              name: reviews: v1
            spec:
              ports:
              - port: 9080
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: ratings
            spec:
              ports:
              - port: 9080
            """;

        var parsed = ConfigFileParser.Parse("broken.yaml", yaml);

        Assert.Empty(parsed.Resources);
        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Equal("broken.yaml", error.File);
        Assert.Equal(4, error.Line);
        Assert.Null(error.Resource);
        Assert.StartsWith("invalid YAML", error.Message, StringComparison.Ordinal);
        Assert.EndsWith("nothing in this file was applied", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_MisspelledField_ErrorNamesTheFieldAndRejectsOnlyThatResource()
    {
        const string yaml = """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hots:
              - reviews
              http:
              - route:
                - destination:
                    host: reviews
            ---
            apiVersion: v1
            kind: Service
            metadata:
              name: reviews
            spec:
              ports:
              - port: 9080
            """;

        var parsed = ConfigFileParser.Parse("typo.yaml", yaml);

        var typo = Assert.Single(parsed.Diagnostics, d => d.Field == "spec.hots");
        Assert.Equal(DiagnosticSeverity.Error, typo.Severity);
        Assert.Equal(6, typo.Line);
        Assert.Equal("VirtualService default/reviews", typo.Resource);
        Assert.Contains("unknown field 'hots'", typo.Message, StringComparison.Ordinal);
        Assert.IsType<KubernetesService>(Assert.Single(parsed.Resources));
    }

    [Fact]
    public void Parse_InvalidRegex_ErrorNamesTheMatchField()
    {
        var parsed = ConfigFileParser.Parse("regex.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - match:
                - uri:
                    regex: "/reviews/(\\d+"
                route:
                - destination:
                    host: reviews
            """);

        Assert.Empty(parsed.Resources);
        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Equal("spec.http[0].match[0].uri.regex", error.Field);
        Assert.Equal(10, error.Line);
        Assert.Contains("is not a valid regular expression", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_MissingRequiredField_ErrorSaysRequired()
    {
        var parsed = ConfigFileParser.Parse("dr.yaml", """
            apiVersion: networking.istio.io/v1
            kind: DestinationRule
            metadata:
              name: reviews
            spec:
              subsets:
              - name: v1
                labels: {version: v1}
            """);

        Assert.Empty(parsed.Resources);
        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Equal("spec.host", error.Field);
        Assert.Equal("DestinationRule default/reviews", error.Resource);
        Assert.Equal("is required", error.Message);
    }

    [Fact]
    public void Parse_MissingName_ErrorNamesMetadataName()
    {
        var parsed = ConfigFileParser.Parse("svc.yaml", """
            apiVersion: v1
            kind: Service
            metadata:
              namespace: default
            spec:
              ports: [{port: 9080}]
            """);

        Assert.Empty(parsed.Resources);
        Assert.Equal("metadata.name", Assert.Single(parsed.Diagnostics).Field);
    }

    [Fact]
    public void Parse_ServiceWithARepeatedPortNumber_ErrorNamesTheSecondPort()
    {
        var parsed = ConfigFileParser.Parse("svc.yaml", """
            apiVersion: v1
            kind: Service
            metadata:
              name: shipping
            spec:
              ports:
              - {port: 8080, name: http}
              - {port: 8080, name: http-alt}
            """);

        Assert.Empty(parsed.Resources);
        Assert.StartsWith("spec.ports[1]", Assert.Single(parsed.Diagnostics).Field, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_WrongApiVersion_ErrorNamesTheAcceptedVersions()
    {
        var parsed = ConfigFileParser.Parse("vs.yaml", """
            apiVersion: networking.istio.io/v2
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
            """);

        Assert.Empty(parsed.Resources);
        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Equal("apiVersion", error.Field);
        Assert.Equal(1, error.Line);
        Assert.Contains("networking.istio.io/v1", error.Message, StringComparison.Ordinal);
        Assert.Contains("not networking.istio.io/v2", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_UnknownKind_WarnsAndIgnoresTheObject()
    {
        var parsed = ConfigFileParser.Parse("deploy.yaml", """
            apiVersion: apps/v1
            kind: Deployment
            metadata:
              name: reviews-v1
            spec:
              replicas: 1
            """);

        Assert.Empty(parsed.Resources);
        var warning = Assert.Single(parsed.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.Equal("kind", warning.Field);
    }

    [Theory]
    [InlineData("0.5s", 500)]
    [InlineData("1m30s", 90_000)]
    [InlineData("250ms", 250)]
    [InlineData("1h", 3_600_000)]
    public void Parse_RouteTimeout_ReadsGoDurations(string timeout, int expectedMilliseconds)
    {
        var vs = Assert.IsType<VirtualService>(Assert.Single(TestFiles.ParseValid("vs.yaml", $"""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - timeout: {timeout}
                route:
                - destination:
                    host: reviews
            """)));

        Assert.Equal(TimeSpan.FromMilliseconds(expectedMilliseconds), vs.Http[0].Timeout);
    }

    [Theory]
    [InlineData("5 seconds")]
    [InlineData("999999999h")]
    [InlineData("88000000h")]
    [InlineData("10")]
    [InlineData("1d")]
    [InlineData("s")]
    public void Parse_InvalidTimeout_ErrorNamesTheTimeoutField(string timeout)
    {
        var parsed = ConfigFileParser.Parse("vs.yaml", $"""
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - timeout: {timeout}
                route:
                - destination:
                    host: reviews
            """);

        Assert.Empty(parsed.Resources);
        var error = Assert.Single(parsed.Diagnostics);
        Assert.Equal("spec.http[0].timeout", error.Field);
        Assert.Contains("is not a duration", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_EmptyDocuments_AreSkipped()
    {
        var parsed = ConfigFileParser.Parse("empty.yaml", "---\n# nothing here\n---\n");

        Assert.Empty(parsed.Resources);
        Assert.Empty(parsed.Diagnostics);
    }

    [Fact]
    public void ToString_Diagnostic_ReadsLikeACompilerMessage()
    {
        var diagnostic = new ConfigDiagnostic(DiagnosticSeverity.Error, "vs.yaml", 6, "VirtualService default/reviews", "spec.hots", "unknown field 'hots'");

        Assert.Equal("error: vs.yaml:6: VirtualService default/reviews field spec.hots: unknown field 'hots'", diagnostic.ToString());
    }
}
