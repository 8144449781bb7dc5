using System.Diagnostics;
using System.Net.Sockets;
using System.Text;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>A real process started by a test, with its output captured for failure messages; killed (with its tree) on dispose.</summary>
internal sealed class ChildProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly StringBuilder _output = new();

    private ChildProcess(Process process) => _process = process;

    public int Pid => _process.Id;

    public Process Process => _process;

    public string Output
    {
        get
        {
            lock (_output)
            {
                return _output.ToString();
            }
        }
    }

    public event Action<string>? Line;

    public static ChildProcess Start(string fileName, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env = null, string? workingDirectory = null)
    {
        var info = new ProcessStartInfo(fileName) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false, WorkingDirectory = workingDirectory ?? RepoPaths.TestOutput };
        foreach (var arg in args)
        {
            info.ArgumentList.Add(arg);
        }
        foreach (var (key, value) in env ?? new Dictionary<string, string?>())
        {
            info.Environment[key] = value;
        }
        var process = new Process { StartInfo = info };
        var child = new ChildProcess(process);
        process.OutputDataReceived += (_, e) => child.Append(e.Data);
        process.ErrorDataReceived += (_, e) => child.Append(e.Data);
        process.Start();
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return child;
    }

    /// <summary>Runs <c>dotnet DLL</c> from the test output folder.</summary>
    public static ChildProcess Dotnet(string dll, IEnumerable<string> args, IReadOnlyDictionary<string, string?>? env = null, string? workingDirectory = null) =>
        Start("dotnet", [Path.Combine(RepoPaths.TestOutput, dll), .. args], env, workingDirectory);

    /// <summary>Waits until something accepts TCP on the port (bounded); a process that exits first fails the wait with its output.</summary>
    public async Task WaitForPortAsync(int port, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            if (_process.HasExited)
            {
                throw new InvalidOperationException($"process exited with {_process.ExitCode} before listening on {port}:\n{Output}");
            }
            try
            {
                using var client = new TcpClient();
                await client.ConnectAsync("127.0.0.1", port);
                return;
            }
            catch (SocketException)
            {
                await Task.Delay(50);
            }
        }
        throw new TimeoutException($"nothing listened on {port} within {timeout}:\n{Output}");
    }

    /// <summary>
    /// Waits for the exit (bounded). A timeout says whether the process itself is still running or only a descendant
    /// still holds its output pipes open (Process.WaitForExitAsync also waits for the redirected streams' end), with
    /// the process table and the output, so a hang in CI can be diagnosed from the failure alone.
    /// </summary>
    public async Task<int> WaitForExitAsync(TimeSpan timeout)
    {
        try
        {
            await _process.WaitForExitAsync().WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            var state = _process.HasExited ? $"exited with {_process.ExitCode}, but its output pipes are still open" : "still running";
            throw new TimeoutException($"process {Pid} did not finish within {timeout}: {state}\n--- ps ---\n{ProcessTable()}\n--- output ---\n{Output}");
        }
        return _process.ExitCode;
    }

    private static string ProcessTable()
    {
        try
        {
            using var ps = Process.Start(new ProcessStartInfo("ps", ["-eo", "pid,ppid,stat,etime,args", "--forest"]) { RedirectStandardOutput = true, UseShellExecute = false })!;
            var table = ps.StandardOutput.ReadToEnd();
            ps.WaitForExit(5000);
            return table;
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return $"(ps failed: {e.Message})";
        }
    }

    private void Append(string? line)
    {
        if (line is null)
        {
            return;
        }
        lock (_output)
        {
            _output.AppendLine(line);
        }
        Line?.Invoke(line);
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync().WaitAsync(Timeouts.Short);
        }
        _process.Dispose();
    }
}
