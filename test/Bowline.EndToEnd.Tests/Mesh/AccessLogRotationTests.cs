using System.Diagnostics;
using System.Text;
using Bowline.EndToEnd.Tests.Infrastructure;
using Bowline.Proxy.AccessLogs;

namespace Bowline.EndToEnd.Tests.Mesh;

/// <summary>Log rotation as operators do it with Envoy: rename the file, send SIGUSR1; the proxy reopens its access logs and keeps running.</summary>
public sealed class AccessLogRotationTests
{
    [Fact]
    public async Task Sigusr1_ReopensTheAccessLogs_AndTheProxySurvives()
    {
        await using var mesh = await MeshHarness.StartAsync(("reviews.yaml", MeshYaml.Service("reviews", 9080)));
        var sidecar = await mesh.StartSidecarAsync("productpage-v1", new Dictionary<string, string> { ["app"] = "productpage" }, []);
        var files = (AccessLogFiles)sidecar.Host.Services.GetService(typeof(AccessLogFiles))!;
        var dir = Directory.CreateTempSubdirectory("bowline-rotate-").FullName;
        var path = Path.Combine(dir, "access.log");
        var file = files.Get(path);
        file.Append(new StringBuilder("before\n"));
        await file.FlushAsync().WaitAsync(Timeouts.Short);
        File.Move(path, path + ".1");

        var reopened = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        files.ReopenRequested += () => reopened.TrySetResult();
        using (var kill = Process.Start("kill", ["-USR1", Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync().WaitAsync(Timeouts.Short);
        }
        await reopened.Task.WaitAsync(Timeouts.Short);
        file.Append(new StringBuilder("after\n"));
        await file.FlushAsync().WaitAsync(Timeouts.Short);

        // Still here (an uncancelled SIGUSR1 would have ended this process), and the new file has the new line.
        Assert.Equal(["before"], File.ReadAllLines(path + ".1"));
        Assert.Equal(["after"], File.ReadAllLines(path));
        Directory.Delete(dir, recursive: true);
    }
}
