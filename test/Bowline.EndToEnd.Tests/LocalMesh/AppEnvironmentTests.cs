using Bowline.Cli.LocalMesh;
using Bowline.ControlPlane.Config;

namespace Bowline.EndToEnd.Tests.LocalMesh;

/// <summary>What <c>bowline up</c> hands an app: its ports, its sidecar, and Kubernetes' service variables for TCP ports.</summary>
public sealed class AppEnvironmentTests
{
    private static WorkloadPlan Plan(params OutboundTcpPlan[] tcp)
    {
        var meta = new ResourceMeta("Workload", "ratings-v2", "default", new Dictionary<string, string> { ["app"] = "ratings" }, "ratings.yaml", 1);
        var workload = new Workload(meta, "bookinfo-ratings", null, ["ratings"], [], [new WorkloadEnv("MONGO_DB_URL", "mongodb://mongodb:27017/test")], [9080], null);
        return new WorkloadPlan(workload, "ratings-v2", [new PortPlan(9080, 41001, 41002)], 41003, 41004, new Dictionary<string, int>(), new LaunchSpec("ratings", [], "/", new Dictionary<string, string?>(), "/dev/null"))
        {
            OutboundTcp = tcp,
        };
    }

    [Fact]
    public void For_TcpServicePorts_AreKubernetesServiceVariablesPointingAtTheSidecar()
    {
        var environment = AppEnvironment.For(Plan(
            new OutboundTcpPlan("mongodb", "mongodb.default.svc.cluster.local", new ServicePort(27017, "mongo", null, "TCP"), 42000),
            new OutboundTcpPlan("tcp-echo", "tcp-echo.default.svc.cluster.local", new ServicePort(9000, "tcp", null, "TCP"), 42001),
            new OutboundTcpPlan("tcp-echo", "tcp-echo.default.svc.cluster.local", new ServicePort(9001, "tcp-other", null, "TCP"), 42002)));

        Assert.Equal("127.0.0.1", environment["MONGODB_SERVICE_HOST"]);
        Assert.Equal("42000", environment["MONGODB_SERVICE_PORT"]);
        Assert.Equal("42000", environment["MONGODB_SERVICE_PORT_MONGO"]);
        Assert.Equal("127.0.0.1", environment["TCP_ECHO_SERVICE_HOST"]);
        Assert.Equal("42001", environment["TCP_ECHO_SERVICE_PORT"]);
        Assert.Equal("42002", environment["TCP_ECHO_SERVICE_PORT_TCP_OTHER"]);
        Assert.Equal("http://127.0.0.1:41003", environment["HTTP_PROXY"]);
        Assert.Equal("41001", environment["PORT"]);
        Assert.Equal("mongodb://mongodb:27017/test", environment["MONGO_DB_URL"]);
    }

    [Fact]
    public void For_NoTcpServices_SetsNoServiceVariables() =>
        Assert.DoesNotContain(AppEnvironment.For(Plan()).Keys, k => k.EndsWith("_SERVICE_HOST", StringComparison.Ordinal));
}
