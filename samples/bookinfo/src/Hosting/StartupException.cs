namespace Bowline.Samples.Bookinfo.Hosting;

/// <summary>The environment cannot be used; the message names the variable and the fix.</summary>
internal sealed class StartupException(string message) : Exception(message);
