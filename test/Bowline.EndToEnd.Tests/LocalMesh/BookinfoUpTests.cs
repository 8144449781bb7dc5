using System.Diagnostics;
using System.Text.Json;
using Bowline.EndToEnd.Tests.Infrastructure;

namespace Bowline.EndToEnd.Tests.LocalMesh;

/// <summary>
/// The README's main job: <c>bowline up</c> on the bundled bookinfo sample, as real processes. The page is served
/// through the ingress gateway, Istio's request-routing task applies by copying its file in, and Ctrl-C leaves no
/// process behind.
/// </summary>
public sealed class BookinfoUpTests
{
    [Fact]
    public async Task Up_Bookinfo_ServesThePage_RestartsACrashedApp_RoutesJasonToV2_AndStopsCleanlyOnSigint()
    {
        // A copy of the whole sample outside the repository, as a user would take it: it must build and run on its own.
        var work = Directory.CreateTempSubdirectory("bowline-up-").FullName;
        var sample = Path.Combine(RepoPaths.Root, "samples", "bookinfo");
        CopySample(sample, work);
        var state = Path.Combine(work, ".bowline");
        var ingressPort = Ports.Free();

        var started = Stopwatch.StartNew();
        await using var up = ChildProcess.Dotnet("bowline.dll", ["up", work, "--ingress", $"127.0.0.1:{ingressPort}", "--xds-port", "0", "--secure-xds-port", "0", "--monitoring-port", "0", "--state", state]);
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{ingressPort}"), Timeout = Timeouts.Short };
        var page = await PollAsync(http, "/productpage", null, p => p.Contains("reviews-v", StringComparison.Ordinal), TimeSpan.FromMinutes(3), up);
        var firstPage = started.Elapsed;

        Assert.Contains("The Comedy of Errors", page, StringComparison.Ordinal);
        var status = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(state, "status.json")));
        var pids = Pids(status.RootElement).ToList();
        Assert.Equal(6, status.RootElement.GetProperty("workloads").GetArrayLength());

        // Access logs are on (as in Istio's demo profile): productpage's sidecar logged the page request, in Istio's
        // format, through the flusher into its own output, which bowline up keeps in its log file.
        var productpageLog = Path.Combine(state, "logs", "productpage-v1.proxy.log");
        var logged = false;
        for (var deadline = DateTime.UtcNow + Timeouts.Long; !logged && DateTime.UtcNow < deadline;)
        {
            logged = File.Exists(productpageLog) && File.ReadAllText(productpageLog).Contains("\"GET /productpage HTTP/1.1\" 200 - via_upstream", StringComparison.Ordinal);
            if (!logged)
            {
                await Task.Delay(200);
            }
        }
        Assert.True(logged, $"no access log line for GET /productpage in {productpageLog}:\n{(File.Exists(productpageLog) ? File.ReadAllText(productpageLog)[^Math.Min(2000, File.ReadAllText(productpageLog).Length)..] : "(missing)")}");

        // bookinfo runs on mesh mTLS: each sidecar holds a SPIFFE certificate for its service account from the CA, and
        // productpage reached reviews over TLS (PERMISSIVE inbound, automatic mTLS outbound, as Istio by default).
        var handshakes = 0L;
        foreach (var reviews in status.RootElement.GetProperty("workloads").EnumerateArray().Where(w => w.GetProperty("name").GetString()!.StartsWith("reviews-", StringComparison.Ordinal)))
        {
            using var admin = new HttpClient { BaseAddress = new Uri(reviews.GetProperty("sidecar").GetProperty("admin").GetString()!), Timeout = Timeouts.Short };
            Assert.Contains("spiffe://cluster.local/ns/default/sa/bookinfo-reviews", await admin.GetStringAsync(new Uri("/certs", UriKind.Relative)), StringComparison.Ordinal);
            var stats = await admin.GetStringAsync(new Uri("/stats", UriKind.Relative));
            handshakes += System.Text.RegularExpressions.Regex.Matches(stats, @"^listener\.[0-9.]+_[0-9]+\.ssl\.handshake: ([0-9]+)$", System.Text.RegularExpressions.RegexOptions.Multiline)
                .Sum(m => long.Parse(m.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture));
        }
        Assert.True(handshakes > 0, "no reviews sidecar accepted a TLS connection");

        // A crashed workload is reported and restarted.
        var ratings = status.RootElement.GetProperty("workloads").EnumerateArray().Single(w => w.GetProperty("name").GetString() == "ratings-v1");
        var crashedPid = ratings.GetProperty("app").GetProperty("pid").GetInt32();
        using (var crashed = Process.GetProcessById(crashedPid))
        {
            crashed.Kill();
        }
        var restartedPid = await PollStatusAsync(state, s => s.GetProperty("workloads").EnumerateArray()
            .Where(w => w.GetProperty("name").GetString() == "ratings-v1" && w.GetProperty("restarts").GetInt32() >= 1)
            .Select(w => w.GetProperty("app").GetProperty("pid")).Where(p => p.ValueKind == JsonValueKind.Number && p.GetInt32() != crashedPid)
            .Select(p => p.GetInt32()).FirstOrDefault(), TimeSpan.FromSeconds(30), up);
        Assert.NotEqual(crashedPid, restartedPid);
        Assert.Contains("restarting in", up.Output, StringComparison.Ordinal);
        pids = Pids(JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(state, "status.json"))).RootElement).ToList();

        File.Copy(Path.Combine(sample, "tasks", "virtual-service-reviews-test-v2.yaml"), Path.Combine(work, "virtual-service-reviews-test-v2.yaml"));
        await PollAsync(http, "/productpage", "jason", p => p.Contains("reviews-v2", StringComparison.Ordinal), Timeouts.Short, up);
        var anonymous = await PollAsync(http, "/productpage", null, p => p.Contains("reviews-v1", StringComparison.Ordinal), Timeouts.Short, up);
        Assert.DoesNotContain("reviews-v2", anonymous, StringComparison.Ordinal);

        // Istio's fault-injection task, with Istio's own YAML and its published outcomes: an abort on ratings for jason...
        File.Copy(Path.Combine(sample, "tasks", "virtual-service-ratings-test-abort.yaml"), Path.Combine(work, "ratings-fault.yaml"));
        await PollAsync(http, "/productpage", "jason", p => p.Contains("Ratings service is currently unavailable", StringComparison.Ordinal), Timeouts.Short, up);
        // ...then a 7 s delay, which outlasts productpage's 3 s timeout and one retry on reviews.
        File.Copy(Path.Combine(sample, "tasks", "virtual-service-ratings-test-delay.yaml"), Path.Combine(work, "ratings-fault.yaml"), overwrite: true);
        await PollAsync(http, "/productpage", "jason", p => p.Contains("Sorry, product reviews are currently unavailable for this book.", StringComparison.Ordinal), Timeouts.Long, up);
        File.Delete(Path.Combine(work, "ratings-fault.yaml"));

        // Bookinfo fully on mTLS: a mesh-wide STRICT PeerAuthentication, applied live. The page keeps working (every hop
        // is sidecar to sidecar), and plaintext straight to a sidecar's inbound port is refused.
        await File.WriteAllTextAsync(Path.Combine(work, "peer-authentication-strict.yaml"), """
            apiVersion: security.istio.io/v1
            kind: PeerAuthentication
            metadata: {name: default, namespace: istio-system}
            spec:
              mtls: {mode: STRICT}
            """);
        var details = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(state, "status.json"))).RootElement.GetProperty("workloads").EnumerateArray()
            .Single(w => w.GetProperty("name").GetString() == "details-v1");
        var detailsInbound = details.GetProperty("sidecar").GetProperty("inboundPorts").EnumerateObject().First().Value.GetInt32();
        using var plaintext = new HttpClient(new SocketsHttpHandler { PooledConnectionLifetime = TimeSpan.Zero }) { Timeout = Timeouts.Short };
        var refusedBy = DateTime.UtcNow + Timeouts.Long;
        var refused = false;
        while (!refused && DateTime.UtcNow < refusedBy)
        {
            try
            {
                using var response = await plaintext.GetAsync(new Uri($"http://127.0.0.1:{detailsInbound}/details/0"));
                await Task.Delay(200);
            }
            catch (HttpRequestException)
            {
                refused = true;
            }
        }
        Assert.True(refused, $"plaintext to details' inbound port {detailsInbound} was still served a minute after STRICT");
        // Every backend answers through mTLS: no "currently unavailable" sentence for details, reviews or ratings.
        await PollAsync(http, "/productpage", null, p => p.Contains("reviews-v", StringComparison.Ordinal) && !p.Contains("currently unavailable", StringComparison.Ordinal), Timeouts.Long, up);

        using (var kill = Process.Start("kill", ["-INT", up.Pid.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync().Within(Timeouts.Short);
        }
        // A generous bound: shutdown drains every sidecar and app in turn, which a loaded machine can stretch well past 15 s.
        var exit = await up.WaitForExitAsync(Timeouts.Long);

        Assert.True(exit == 0, up.Output);
        Assert.All(pids, pid => Assert.False(IsAlive(pid), $"process {pid} survived bowline up's shutdown"));
        Assert.False(File.Exists(Path.Combine(state, "status.json")));
        Console.WriteLine($"bowline up: first page after {firstPage.TotalSeconds:F1} s (including the sample's build)");
        Directory.Delete(work, recursive: true);
    }

    private static void CopySample(string from, string to)
    {
        foreach (var directory in Directory.EnumerateDirectories(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, directory);
            if (!relative.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj" or ".bowline"))
            {
                Directory.CreateDirectory(Path.Combine(to, relative));
            }
        }
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var relative = Path.GetRelativePath(from, file);
            if (!relative.Split(Path.DirectorySeparatorChar).Any(part => part is "bin" or "obj" or ".bowline"))
            {
                File.Copy(file, Path.Combine(to, relative));
            }
        }
    }

    private static async Task<string> PollAsync(HttpClient http, string path, string? user, Func<string, bool> done, TimeSpan timeout, ChildProcess up)
    {
        // bowline up is a separate process: polling its public page, bounded, is the only way to observe it.
        var deadline = DateTime.UtcNow + timeout;
        var last = "";
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(up.Process.HasExited, up.Output);
            try
            {
                using var request = new HttpRequestMessage(HttpMethod.Get, path);
                if (user is not null)
                {
                    request.Headers.Add("end-user", user);
                }
                using var response = await http.SendAsync(request);
                last = $"{(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}";
                if (response.IsSuccessStatusCode && done(last))
                {
                    return last;
                }
            }
            catch (HttpRequestException e)
            {
                last = e.Message;
            }
            catch (TaskCanceledException e) when (e.InnerException is TimeoutException)
            {
                // One slow answer (13 processes starting on two busy cores) is not the verdict; the deadline is.
                last = $"no answer within {http.Timeout.TotalSeconds:0}s";
            }
            await Task.Delay(200);
        }
        throw new TimeoutException($"{path} did not become ready in {timeout}; last answer: {last[..Math.Min(500, last.Length)]}\n{up.Output}");
    }

    private static async Task<int> PollStatusAsync(string state, Func<JsonElement, int> read, TimeSpan timeout, ChildProcess up)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (DateTime.UtcNow < deadline)
        {
            Assert.False(up.Process.HasExited, up.Output);
            try
            {
                using var status = JsonDocument.Parse(await File.ReadAllTextAsync(Path.Combine(state, "status.json")));
                if (read(status.RootElement) is var value and not 0)
                {
                    return value;
                }
            }
            catch (Exception e) when (e is IOException or JsonException)
            {
                // Caught mid-rewrite; read again.
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"status.json did not show the restart within {timeout}:\n{up.Output}");
    }

    private static IEnumerable<int> Pids(JsonElement status)
    {
        foreach (var property in new[] { "controlPlane", "ingress" })
        {
            if (status.TryGetProperty(property, out var part) && part.TryGetProperty("pid", out var pid) && pid.ValueKind == JsonValueKind.Number)
            {
                yield return pid.GetInt32();
            }
        }
        foreach (var workload in status.GetProperty("workloads").EnumerateArray())
        {
            yield return workload.GetProperty("app").GetProperty("pid").GetInt32();
            yield return workload.GetProperty("sidecar").GetProperty("pid").GetInt32();
        }
    }

    private static bool IsAlive(int pid)
    {
        try
        {
            using var process = Process.GetProcessById(pid);
            return !process.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
    }
}
