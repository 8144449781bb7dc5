using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Registry;

namespace Bowline.ControlPlane.Translation;

/// <summary>What an outbound cluster's TLS depends on: the destination, its port and subset, and the DestinationRule policy resolved for them.</summary>
internal sealed record UpstreamTarget(ServiceIndex Index, MeshService Service, ServicePort Port, string? Subset, TrafficPolicy? Policy, DestinationRule? Rule)
{
    public MeshSecurity Security => Index.Config.Security;

    /// <summary>The DestinationRule, for messages: one warning per rule, not per cluster.</summary>
    public string RuleWhere => Rule is null ? Service.Hostname : $"{Rule.Meta} ({Rule.Meta.File})";
}
