using System.Globalization;

namespace Bowline.Samples.Bookinfo.Hosting;

/// <summary>Reads the environment variables bookinfo is configured by, the way Istio's
/// bookinfo reads them: unset and empty both mean "use the default".</summary>
internal static class Env
{
    public static string? Get(string name) =>
        System.Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;

    /// <summary>A TCP port from <paramref name="name"/>, or <paramref name="fallback"/> when unset.</summary>
    public static int GetPort(string name, int fallback)
    {
        if (Get(name) is not { } raw)
        {
            return fallback;
        }

        if (!int.TryParse(raw, NumberStyles.None, CultureInfo.InvariantCulture, out int port)
            || port is < 1 or > 65535)
        {
            throw new StartupException(
                $"environment variable {name}='{raw}' is not a TCP port; set it to a number from 1 to 65535 or unset it for {fallback}.");
        }

        return port;
    }
}
