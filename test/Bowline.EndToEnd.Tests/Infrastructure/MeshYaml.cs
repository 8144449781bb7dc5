namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>Istio and Kubernetes YAML for the tests, written the way users write it.</summary>
internal static class MeshYaml
{
    public static string Service(string name, int port, string portName = "http") => $$"""
        apiVersion: v1
        kind: Service
        metadata: {name: {{name}}, namespace: default}
        spec:
          selector: {app: {{name}}}
          ports:
          - {name: {{portName}}, port: {{port}}}
        """;

    public static string Subsets(string host, params string[] versions) => $$"""
        apiVersion: networking.istio.io/v1
        kind: DestinationRule
        metadata: {name: {{host}}, namespace: default}
        spec:
          host: {{host}}
          subsets:
        {{string.Join("\n", versions.Select(v => $"  - name: {v}\n    labels: {{version: {v}}}"))}}
        """;

    public static string Split(string host, params (string Subset, int Weight)[] routes) => $$"""
        apiVersion: networking.istio.io/v1
        kind: VirtualService
        metadata: {name: {{host}}, namespace: default}
        spec:
          hosts: [{{host}}]
          http:
          - route:
        {{string.Join("\n", routes.Select(r => $"    - destination: {{host: {host}, subset: {r.Subset}}}\n      weight: {r.Weight}"))}}
        """;
}
