namespace Bowline.Samples.GrpcEcho.Server;

/// <summary>
/// What a server process reports about itself in every response. A singleton: gRPC creates a
/// service instance per call, so the unary call counter must live here. Thread-safe.
/// </summary>
internal sealed class EchoServerState(string version, string hostname)
{
    private long _unaryCalls;

    public string Version { get; } = version;

    public string Hostname { get; } = hostname;

    public static EchoServerState FromEnvironment()
    {
        var version = Environment.GetEnvironmentVariable("SERVICE_VERSION");
        var pod = Environment.GetEnvironmentVariable("POD_NAME");
        return new EchoServerState(
            string.IsNullOrEmpty(version) ? "v1" : version,
            string.IsNullOrEmpty(pod) ? Environment.MachineName : pod);
    }

    /// <summary>Counts a unary call and returns its number, from 1.</summary>
    public long NextUnarySequence() => Interlocked.Increment(ref _unaryCalls);
}
