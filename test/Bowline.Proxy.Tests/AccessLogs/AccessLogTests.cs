using System.Net;
using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Bowline.Proxy.AccessLogs;
using AccessLogFilter = Envoy.Config.Accesslog.V3.AccessLogFilter;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Stats;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Envoy.Config.Accesslog.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;

namespace Bowline.Proxy.Tests.AccessLogs;

/// <summary>
/// Envoy's access logs on a real listener: the format-string language (Istio's default text format and JSON), the
/// filters, and the file flusher (bounded, never blocking a request, counting what it drops, reopening for rotation).
/// </summary>
public sealed class AccessLogTests : IAsyncLifetime
{
    private readonly CompilerHarness _compiler = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddSingleton(new SecretStore()).BuildServiceProvider();
    private readonly int _port = Ports.Free();
    private readonly string _dir = Directory.CreateTempSubdirectory("bowline-accesslog-").FullName;
    private ListenerServer? _server;

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.StopAsync(Timeouts.Token());
            await _server.DisposeAsync();
        }
        await _services.DisposeAsync();
        _compiler.Dispose();
        Directory.Delete(_dir, recursive: true);
    }

    private string LogPath => Path.Combine(_dir, "access.log");

    /// <summary>Istio's default text format (pilot's EnvoyTextLogFormat), as the control plane sends it.</summary>
    private const string IstioText = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
        + "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% "
        + "%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" "
        + "%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

    private static AccessLog FileLog(string path, SubstitutionFormatString? format = null, AccessLogFilter? filter = null) => new()
    {
        Name = "envoy.access_loggers.file",
        Filter = filter,
        TypedConfig = Any.Pack(new FileAccessLog { Path = path, LogFormat = format }),
    };

    private static SubstitutionFormatString Text(string format) => new() { TextFormatSource = new DataSource { InlineString = format } };

    private async Task StartAsync(params AccessLog[] logs)
    {
        var hcm = new HttpConnectionManager
        {
            StatPrefix = "inbound_0.0.0.0_9080",
            RouteConfig = RouteConfig("local", VirtualHost("all", ["*"], new Route
            {
                Name = "hello",
                Match = Prefix("/hello"),
                DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { InlineString = "hi" } },
            })),
        };
        hcm.HttpFilters.Add(RouterFilter());
        hcm.AccessLog.AddRange(logs);
        var snapshot = _compiler.Compile(Listener("0.0.0.0_9080", _port, "127.0.0.1", HttpConnectionManagerFilter(hcm)));
        _server = await _compiler.ServeAsync(snapshot.Listeners["0.0.0.0_9080"], _services);
    }

    private async Task<string[]> SendAndReadAsync(params string[] paths)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_port}"), Timeout = Timeouts.Default };
        foreach (var path in paths)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            request.Headers.UserAgent.ParseAdd("curl/8.0");
            request.Headers.Add("x-request-id", "req-1");
            using var response = await http.SendAsync(request);
        }
        await _compiler.AccessLogs.Get(LogPath).FlushAsync().WaitAsync(Timeouts.Default);
        return File.ReadAllLines(LogPath);
    }

    [Fact]
    public async Task IstioTextFormat_OneLinePerRequest_WithTheRequestsFields()
    {
        await StartAsync(FileLog(LogPath, Text(IstioText)));

        var line = Assert.Single(await SendAndReadAsync("/hello?x=1"));

        // [time] "GET /hello?x=1 HTTP/1.1" 200 - direct_response - "-" 0 2 <ms> - "-" "curl/8.0" "req-1" "127.0.0.1:port" "-" - - local remote - hello
        Assert.Matches(@"^\[\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z\] ""GET /hello\?x=1 HTTP/1\.1"" 200 - \S+ - ""-"" 0 2 \d+ - ""-"" ""curl/8\.0"" ""req-1"" ""127\.0\.0\.1:\d+"" ""-"" - - 127\.0\.0\.1:\d+ 127\.0\.0\.1:\d+ - hello$", line);
    }

    [Fact]
    public async Task JsonFormat_NumbersStayNumbers_AndAMissingValueIsNull()
    {
        var json = new Struct
        {
            Fields =
            {
                ["code"] = Value.ForString("%RESPONSE_CODE%"),
                ["flags"] = Value.ForString("%RESPONSE_FLAGS%"),
                ["path"] = Value.ForString("%REQ(:PATH)%"),
                ["upstream"] = Value.ForString("%UPSTREAM_HOST%"),
                ["both"] = Value.ForString("%REQ(:METHOD)% %RESPONSE_CODE%"),
            },
        };
        await StartAsync(FileLog(LogPath, new SubstitutionFormatString { JsonFormat = json }));

        var lines = await SendAndReadAsync("/hello", "/nowhere");

        Assert.Equal(2, lines.Length);
        using var ok = JsonDocument.Parse(lines[0]);
        Assert.Equal(200, ok.RootElement.GetProperty("code").GetInt32());
        Assert.Equal(JsonValueKind.Null, ok.RootElement.GetProperty("upstream").ValueKind);
        Assert.Equal("GET 200", ok.RootElement.GetProperty("both").GetString());
        using var missing = JsonDocument.Parse(lines[1]);
        Assert.Equal(404, missing.RootElement.GetProperty("code").GetInt32());
        Assert.Equal("NR", missing.RootElement.GetProperty("flags").GetString());
        Assert.Equal("/nowhere", missing.RootElement.GetProperty("path").GetString());
    }

    [Fact]
    public async Task RequestWithoutAnId_GetsOneGenerated_OnceForTheWholeRequest()
    {
        await StartAsync(FileLog(LogPath, Text("%REQ(X-REQUEST-ID)%\n")));
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_port}"), Timeout = Timeouts.Default };

        using (var response = await http.GetAsync("/hello"))
        {
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        }
        await _compiler.AccessLogs.Get(LogPath).FlushAsync().WaitAsync(Timeouts.Default);

        Assert.True(Guid.TryParse(Assert.Single(File.ReadAllLines(LogPath)), out _));
    }

    [Fact]
    public async Task StatusCodeFilter_LogsOnlyTheFailures()
    {
        var atLeast400 = new AccessLogFilter
        {
            StatusCodeFilter = new StatusCodeFilter { Comparison = new ComparisonFilter { Op = ComparisonFilter.Types.Op.Ge, Value = new RuntimeUInt32 { DefaultValue = 400, RuntimeKey = "unused" } } },
        };
        await StartAsync(FileLog(LogPath, Text("%RESPONSE_CODE% %REQ(:PATH)%\n"), atLeast400));

        Assert.Equal(["404 /nowhere"], await SendAndReadAsync("/hello", "/nowhere", "/hello"));
    }

    [Fact]
    public async Task ResponseFlagFilter_LogsTheFlaggedRequests()
    {
        var noRoute = new AccessLogFilter { ResponseFlagFilter = new ResponseFlagFilter { Flags = { "NR" } } };
        await StartAsync(FileLog(LogPath, Text("%RESPONSE_FLAGS% %REQ(:PATH)%\n"), noRoute));

        Assert.Equal(["NR /a", "NR /b"], await SendAndReadAsync("/a", "/hello", "/b"));
    }

    [Theory]
    [InlineData("%NOT_A_THING%", "%NOT_A_THING% is not supported")]
    [InlineData("%REQ(:PATH", "never closed")]
    [InlineData("%PROTOCOL(x)%", "takes no argument")]
    [InlineData("%START_TIME(%Q)%", "%Q is not supported")]
    [InlineData("%START_TIME(%Y%)%", "not a usable time format")]
    public void Compile_BadFormat_IsNackedNamingTheProblem(string format, string expected)
    {
        var hcm = Hcm("p", "r");
        hcm.AccessLog.Add(FileLog(LogPath, Text(format)));

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(Listener("l", _port, "127.0.0.1", HttpConnectionManagerFilter(hcm)), RouteConfig("r")));
        Assert.Contains(expected, error.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Compile_UnsupportedFilterAndLogger_AreNackedByName()
    {
        var runtime = Hcm("p", "r");
        runtime.AccessLog.Add(FileLog(LogPath, filter: new AccessLogFilter { RuntimeFilter = new RuntimeFilter { RuntimeKey = "k" } }));
        Assert.Contains("RuntimeFilter is not supported", Assert.Throws<ProxyConfigException>(() => _compiler.Compile(Listener("l", _port, "127.0.0.1", HttpConnectionManagerFilter(runtime)), RouteConfig("r"))).Message, StringComparison.Ordinal);

        var grpc = Hcm("p", "r");
        grpc.AccessLog.Add(new AccessLog { Name = "envoy.access_loggers.http_grpc", TypedConfig = Any.Pack(new Empty()) });
        Assert.Contains("google.protobuf.Empty is not supported", Assert.Throws<ProxyConfigException>(() => _compiler.Compile(Listener("l", _port, "127.0.0.1", HttpConnectionManagerFilter(grpc)), RouteConfig("r"))).Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Flusher_AFifoNobodyReads_NeverBlocksAppend_AndCountsWhatItDrops()
    {
        var fifo = Path.Combine(_dir, "stalled.fifo");
        using (var mkfifo = Process.Start("mkfifo", [fifo]))
        {
            await mkfifo.WaitForExitAsync().WaitAsync(Timeouts.Default);
        }
        var stats = new ProxyStats();
        using var file = new AccessLogFile(fifo, stats, NullLogger.Instance, maxBuffered: 1024);
        var line = new StringBuilder(new string('x', 99) + "\n");

        // The flusher is stuck opening the FIFO (no reader): every append returns, and beyond the bound they are dropped.
        for (var i = 0; i < 100; i++)
        {
            file.Append(line);
        }

        Assert.InRange(stats.ValueOf("bowline.access_log.dropped"), 70, 100);
        Assert.Equal(100 - stats.ValueOf("bowline.access_log.dropped"), stats.ValueOf("filesystem.write_buffered"));
        // A reader arrives: what was kept is written.
        await using var reader = new FileStream(fifo, FileMode.Open, FileAccess.Read);
        var flushed = file.FlushAsync();
        var buffer = new byte[100];
        Assert.Equal(100, await reader.ReadAtLeastAsync(buffer, 100).AsTask().WaitAsync(Timeouts.Default));
        await flushed.WaitAsync(Timeouts.Default);
    }

    [Fact]
    public async Task Flusher_AFileThatCannotBeOpened_CountsTheFailure_AndWritesAgainOnceItCan()
    {
        var stats = new ProxyStats();
        var path = Path.Combine(_dir, "missing-dir", "access.log");
        using var file = new AccessLogFile(path, stats, NullLogger.Instance);

        file.Append(new StringBuilder("lost\n"));
        await file.FlushAsync().WaitAsync(Timeouts.Default);
        Assert.Equal(1, stats.ValueOf("filesystem.write_failed"));
        Assert.Equal(1, stats.ValueOf("bowline.access_log.dropped"));

        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        file.Append(new StringBuilder("kept\n"));
        await file.FlushAsync().WaitAsync(Timeouts.Default);
        Assert.Equal(["kept"], File.ReadAllLines(path));
    }

    [Fact]
    public async Task Reopen_AfterRotation_WritesToTheNewFile()
    {
        var stats = new ProxyStats();
        using var file = new AccessLogFile(LogPath, stats, NullLogger.Instance);
        file.Append(new StringBuilder("before\n"));
        await file.FlushAsync().WaitAsync(Timeouts.Default);

        File.Move(LogPath, LogPath + ".1");
        file.Reopen();
        file.Append(new StringBuilder("after\n"));
        await file.FlushAsync().WaitAsync(Timeouts.Default);

        Assert.Equal(["before"], File.ReadAllLines(LogPath + ".1"));
        Assert.Equal(["after"], File.ReadAllLines(LogPath));
    }
}
