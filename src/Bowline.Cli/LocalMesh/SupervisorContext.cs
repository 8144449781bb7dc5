namespace Bowline.Cli.LocalMesh;

/// <summary>What every supervised process shares: the clock, the console, and a callback when a pid changes.</summary>
internal sealed record SupervisorContext(TimeProvider Time, TextWriter Console, Action Changed);
