using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Tests.Infrastructure;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bowline.ControlPlane.Tests.Config;

/// <summary>The config directory, driven by calling <see cref="DirectoryConfigSource.Reload"/> directly (no file watcher).</summary>
public sealed class DirectoryConfigSourceTests : IDisposable
{
    private const string ReviewsService = """
        apiVersion: v1
        kind: Service
        metadata:
          name: reviews
        spec:
          ports:
          - port: 9080
            name: http
          selector:
            app: reviews
        """;

    private const string ReviewsRule = """
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata:
          name: reviews
        spec:
          host: reviews
          subsets:
          - name: v1
            labels: {version: v1}
        """;

    private readonly string _dir = Directory.CreateTempSubdirectory("bowline-cp-tests-").FullName;
    private readonly DirectoryConfigSource _source;

    public DirectoryConfigSourceTests() => _source = new DirectoryConfigSource([_dir], NullLogger<DirectoryConfigSource>.Instance);

    public void Dispose()
    {
        _source.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public void Reload_FirstTime_LoadsEveryYamlFileAndIgnoresOthers()
    {
        Write("reviews.yaml", ReviewsService);
        Write("rule.yml", ReviewsRule);
        Write("notes.txt", ReviewsService.Replace("reviews", "ratings", StringComparison.Ordinal));
        Write(".hidden.yaml", ReviewsService.Replace("reviews", "details", StringComparison.Ordinal));

        var config = Reload();

        Assert.Equal(1, config.Generation);
        Assert.Equal(["Service default/reviews", "DestinationRule default/reviews"], config.Resources.Select(r => r.Meta.ToString()));
        Assert.Empty(_source.Diagnostics);
    }

    [Fact]
    public void Reload_EmptyDirectory_PublishesAnEmptyFirstGeneration()
    {
        var config = Reload();

        Assert.Equal(1, config.Generation);
        Assert.Empty(config.Resources);
    }

    [Fact]
    public void Reload_NothingChanged_ReturnsNull()
    {
        Write("reviews.yaml", ReviewsService);
        Reload();

        Assert.Null(_source.Reload());

        // Rewriting the same bytes is no change either.
        Write("reviews.yaml", ReviewsService);
        Assert.Null(_source.Reload());
    }

    [Fact]
    public void Reload_YamlSyntaxErrorAfterGoodVersion_KeepsTheFilesLastGoodResourcesAndReportsTheError()
    {
        Write("reviews.yaml", $"{ReviewsService}\n---\n{ReviewsRule}");
        var good = Reload();

        Write("reviews.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: reviews: broken\n");
        var next = Reload();

        Assert.Equal(good.Generation + 1, next.Generation);
        Assert.Equal(good.Resources, next.Resources);
        var error = Assert.Single(_source.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Error, error.Severity);
        Assert.Equal(Path.Combine(_dir, "reviews.yaml"), error.File);
        Assert.Equal(4, error.Line);
        Assert.Contains("nothing in this file was applied", error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reload_InvalidResourceAfterGoodVersion_KeepsThatResourcesLastGoodVersionAndAppliesTheRest()
    {
        Write("reviews.yaml", $"{ReviewsService}\n---\n{ReviewsRule}");
        Reload();

        // The Service changes port (valid); the DestinationRule gains a typo (invalid).
        var service = ReviewsService.Replace("9080", "9081", StringComparison.Ordinal);
        var rule = ReviewsRule.Replace("host: reviews", "hots: reviews", StringComparison.Ordinal).Replace("name: v1", "name: v2", StringComparison.Ordinal);
        Write("reviews.yaml", $"{service}\n---\n{rule}");
        var next = Reload();

        Assert.Equal(9081, next.Services.Single().Ports.Single().Number);
        var kept = Assert.Single(next.DestinationRules);
        Assert.Equal("reviews", kept.Host);
        Assert.Equal("v1", kept.Subsets.Single().Name);
        Assert.Contains(_source.Diagnostics, d => d is { Severity: DiagnosticSeverity.Error, Field: "spec.hots", Resource: "DestinationRule default/reviews" });
    }

    [Fact]
    public void Reload_InvalidResourceNeverGood_IsLeftOut()
    {
        Write("rule.yaml", ReviewsRule.Replace("host: reviews", "hots: reviews", StringComparison.Ordinal));

        var config = Reload();

        Assert.Empty(config.Resources);
        Assert.Contains(_source.Diagnostics, d => d is { Severity: DiagnosticSeverity.Error, Field: "spec.hots" });
    }

    [Fact]
    public void Reload_ErrorFixed_AppliesTheNewVersionAndClearsTheDiagnostic()
    {
        Write("rule.yaml", ReviewsRule);
        Reload();
        Write("rule.yaml", ReviewsRule.Replace("host: reviews", "hots: reviews", StringComparison.Ordinal));
        Reload();

        Write("rule.yaml", ReviewsRule.Replace("name: v1", "name: v2", StringComparison.Ordinal));
        var fixedConfig = Reload();

        Assert.Equal("v2", fixedConfig.DestinationRules.Single().Subsets.Single().Name);
        Assert.Empty(_source.Diagnostics);
    }

    [Fact]
    public void Reload_FileDeleted_RemovesItsResources()
    {
        Write("reviews.yaml", ReviewsService);
        Write("rule.yaml", ReviewsRule);
        Reload();

        File.Delete(Path.Combine(_dir, "rule.yaml"));
        var next = Reload();

        Assert.Equal("Service default/reviews", Assert.Single(next.Resources).Meta.ToString());
    }

    [Fact]
    public void Reload_DuplicateResourceInTwoFiles_NewerFileWinsAndTheOlderIsAWarning()
    {
        Write("a.yaml", ReviewsService.Replace("9080", "9081", StringComparison.Ordinal));
        Write("b.yaml", ReviewsService);
        File.SetLastWriteTimeUtc(Path.Combine(_dir, "a.yaml"), new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        File.SetLastWriteTimeUtc(Path.Combine(_dir, "b.yaml"), new DateTime(2026, 1, 2, 0, 0, 0, DateTimeKind.Utc));

        var config = Reload();

        var service = Assert.Single(config.Services);
        Assert.Equal(9080, service.Ports.Single().Number);
        Assert.Equal(Path.Combine(_dir, "b.yaml"), service.Meta.File);
        var warning = Assert.Single(_source.Diagnostics);
        Assert.Equal(DiagnosticSeverity.Warning, warning.Severity);
        Assert.Equal(Path.Combine(_dir, "a.yaml"), warning.File);
        Assert.Equal("Service default/reviews", warning.Resource);
        Assert.Equal("metadata.name", warning.Field);
        Assert.Contains($"also defined in {Path.Combine(_dir, "b.yaml")}:1, a newer file", warning.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Reload_SameNameInOtherNamespaceOrKind_IsNotADuplicate()
    {
        Write("a.yaml", ReviewsService);
        Write("b.yaml", ReviewsService.Replace("name: reviews", "name: reviews\n  namespace: other", StringComparison.Ordinal));
        Write("c.yaml", ReviewsRule);

        var config = Reload();

        Assert.Equal(3, config.Resources.Count);
        Assert.Empty(_source.Diagnostics);
    }

    [Fact]
    public void Reload_TwoBookinfoTasksDefiningReviews_TheNewerCopyWinsAsWithKubectlApply()
    {
        // Istio's task flow: apply all-v1, then test-v2, which replaces VirtualService reviews.
        Write("virtual-service-all-v1.yaml", File.ReadAllText(TestFiles.Bookinfo("tasks/virtual-service-all-v1.yaml")));
        Write("virtual-service-reviews-test-v2.yaml", File.ReadAllText(TestFiles.Bookinfo("tasks/virtual-service-reviews-test-v2.yaml")));
        File.SetLastWriteTimeUtc(Path.Combine(_dir, "virtual-service-all-v1.yaml"), new DateTime(2026, 1, 1, 0, 0, 0, DateTimeKind.Utc));
        File.SetLastWriteTimeUtc(Path.Combine(_dir, "virtual-service-reviews-test-v2.yaml"), new DateTime(2026, 1, 2, 0, 0, 0, DateTimeKind.Utc));

        var config = Reload();

        var reviews = config.VirtualServices.Single(v => v.Meta.Name == "reviews");
        Assert.EndsWith("virtual-service-reviews-test-v2.yaml", reviews.Meta.File, StringComparison.Ordinal);
        Assert.Equal(4, config.VirtualServices.Count);
        Assert.Contains(_source.Diagnostics, d => d is { Severity: DiagnosticSeverity.Warning, Resource: "VirtualService default/reviews" } && d.File.EndsWith("virtual-service-all-v1.yaml", StringComparison.Ordinal));
    }

    [Fact]
    public void Reload_TimeoutBeyondAnyDuration_IsADiagnosticNotACrash()
    {
        Write("vs.yaml", """
            apiVersion: networking.istio.io/v1
            kind: VirtualService
            metadata:
              name: reviews
            spec:
              hosts: [reviews]
              http:
              - timeout: 999999999h
                route:
                - destination:
                    host: reviews
            """);

        var config = Reload();

        Assert.Empty(config.Resources);
        Assert.Equal("spec.http[0].timeout", Assert.Single(_source.Diagnostics).Field);
    }

    private void Write(string file, string yaml) => File.WriteAllText(Path.Combine(_dir, file), yaml);

    private MeshConfig Reload()
    {
        var config = _source.Reload();
        Assert.NotNull(config);
        return config;
    }
}
