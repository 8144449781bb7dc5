namespace Bowline.Cli.LocalMesh;

/// <summary>A part of the mesh could not be started; the message says which, and where its log is.</summary>
internal sealed class StartupException(string message) : Exception(message);
