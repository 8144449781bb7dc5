
namespace Bowline.ControlPlane.Tests.Config;

/// <summary>Istio's ServiceEntry rules for resolution and endpoints, one row each.</summary>
public sealed class ServiceEntryValidationTests
{
    public static TheoryData<string, string, string?> Specs => new()
    {
        { "DNS with host name endpoints", "hosts: [api.example.com]\nresolution: DNS\nlocation: MESH_EXTERNAL\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: a.example.net}, {address: b.example.net, ports: {http: 8080}}]", null },
        { "DNS resolving the host itself", "hosts: [api.example.com]\nresolution: DNS\nports: [{number: 80, name: http, protocol: HTTP}]", null },
        { "DNS with a wildcard host and no endpoints", "hosts: ['*.example.com']\nresolution: DNS\nports: [{number: 80, name: http, protocol: HTTP}]", "spec.hosts" },
        { "DNS_ROUND_ROBIN with two endpoints", "hosts: [api.example.com]\nresolution: DNS_ROUND_ROBIN\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: a.example.net}, {address: b.example.net}]", "spec.endpoints" },
        { "DNS endpoint port not declared", "hosts: [api.example.com]\nresolution: DNS\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: a.example.net, ports: {grpc: 9000}}]", "spec.endpoints[0].ports" },
        { "DNS endpoint bad name", "hosts: [api.example.com]\nresolution: DNS\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: 'bad_name!'}]", "spec.endpoints[0].address" },
        { "STATIC with a host name", "hosts: [api.example.com]\nresolution: STATIC\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: a.example.net}]", "spec.endpoints[0].address" },
        { "NONE with endpoints", "hosts: [api.example.com]\nresolution: NONE\nports: [{number: 80, name: http, protocol: HTTP}]\nendpoints: [{address: 10.0.0.1}]", "spec.endpoints" },
        { "host *", "hosts: ['*']\nresolution: DNS\nports: [{number: 80, name: http, protocol: HTTP}]", "spec.hosts" },
        { "exportTo ~ alone", "hosts: [api.example.com]\nresolution: DNS\nexportTo: ['~']\nports: [{number: 80, name: http, protocol: HTTP}]", null },
        { "exportTo ~ and more", "hosts: [api.example.com]\nresolution: DNS\nexportTo: ['~', '.']\nports: [{number: 80, name: http, protocol: HTTP}]", "spec.exportTo" },
        { "bad location", "hosts: [api.example.com]\nresolution: DNS\nlocation: OUTSIDE\nports: [{number: 80, name: http, protocol: HTTP}]", "spec.location" },
    };

    [Theory]
    [MemberData(nameof(Specs))]
    public void Parse_ServiceEntry_FollowsIstiosValidation(string rule, string spec, string? errorField)
    {
        ValidationRows.Check("se.yaml", ValidationRows.Resource("networking.istio.io/v1", "ServiceEntry", spec, name: "api"), rule, errorField);
    }
}
