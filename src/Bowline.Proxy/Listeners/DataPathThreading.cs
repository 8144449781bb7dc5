using System.Net.Sockets;
using System.Runtime.CompilerServices;

namespace Bowline.Proxy.Listeners;

/// <summary>
/// Envoy's threading for the data path: a proxied connection's reads, writes and the request work they trigger run on
/// the socket event thread that saw the readiness, as an Envoy worker runs its connections on its own event loop,
/// instead of each completion hopping to a thread pool worker (and Kestrel hopping again to run the request).
/// </summary>
/// <remarks>
/// <para>
/// Only data-path sockets are adopted: downstream connections a listener accepts and the upstream connections cluster
/// pools and the TCP proxy open (span export uses those pools too). The xDS stream, the CA, health checks
/// and the admin and status ports keep completing on the thread pool, so compiling a large config or serving a config
/// dump never runs on (and stalls) the threads traffic uses. What runs inline is request code that never blocks:
/// filters and the router only await.
/// </para>
/// <para>
/// The per-socket switch is <c>Socket.PreferInlineCompletions</c>, which .NET keeps internal as experimental but
/// preserves for reflection (its DynamicDependency); were it ever gone, <see cref="Available"/> turns false and the
/// data path completes on the thread pool as before, which <see cref="Describe"/> reports at startup.
/// <c>BOWLINE_DATA_PATH_INLINE=0</c> turns it off. The event threads are .NET's socket engines, two unless
/// <c>DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT</c> says otherwise (set by <c>bowline proxy --concurrency</c>).
/// </para>
/// </remarks>
internal static class DataPathThreading
{
    /// <summary>The environment variable that turns inline data-path completions off (<c>0</c>).</summary>
    public const string SwitchVariable = "BOWLINE_DATA_PATH_INLINE";

    /// <summary>False when the runtime lacks the per-socket switch (see remarks).</summary>
    public static bool Available { get; } = Probe();

    /// <summary>Whether data-path sockets complete on their event threads (and Kestrel runs requests there too).</summary>
    public static bool Inline { get; } = Available && Environment.GetEnvironmentVariable(SwitchVariable) != "0";

    /// <summary>Makes <paramref name="socket"/>'s completions run on its event thread, when <see cref="Inline"/>.</summary>
    public static void Adopt(Socket socket)
    {
        if (Inline)
        {
            SetPreferInlineCompletions(socket, true);
        }
    }

    /// <summary>One line for the startup log: how the data path is scheduled, and why.</summary>
    public static string Describe() => Inline
        ? $"inline on the socket event threads ({Environment.GetEnvironmentVariable("DOTNET_SYSTEM_NET_SOCKETS_THREAD_COUNT") ?? "default"} engines)"
        : Available ? $"thread pool ({SwitchVariable}=0)" : "thread pool (this .NET runtime has no Socket.PreferInlineCompletions)";

    private static bool Probe()
    {
        try
        {
            using var socket = new Socket(SocketType.Stream, ProtocolType.Tcp);
            SetPreferInlineCompletions(socket, true);
            return true;
        }
        catch (Exception e) when (e is MissingMemberException or SocketException)
        {
            // No switch in this runtime, or no socket to try it on (out of descriptors at startup): the thread pool.
            return false;
        }
    }

    [UnsafeAccessor(UnsafeAccessorKind.Method, Name = "set_PreferInlineCompletions")]
    private static extern void SetPreferInlineCompletions(Socket socket, bool value);
}
