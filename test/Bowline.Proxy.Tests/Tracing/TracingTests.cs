using Bowline.Proxy.Configuration;
using Bowline.Proxy.Listeners;
using Bowline.Proxy.Tests.Infrastructure;
using Bowline.Proxy.Tls;
using Envoy.Config.Accesslog.V3;
using Envoy.Config.Core.V3;
using Envoy.Config.Route.V3;
using Envoy.Config.Trace.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using static Bowline.Proxy.Tests.Infrastructure.EnvoyResources;
using Percent = Envoy.Type.V3.Percent;

namespace Bowline.Proxy.Tests.Tracing;

/// <summary>
/// The HTTP connection manager's tracing on a real listener, exporting to a real OTLP collector over the tracer's
/// Envoy cluster: sampling decisions (Envoy's order, and who may decide), W3C and B3 propagation, span names and tags.
/// What the proxy sends upstream is read back from the access log's <c>%REQ(...)%</c>, which sees the same headers.
/// </summary>
public sealed class TracingTests : IAsyncLifetime
{
    private readonly CompilerHarness _compiler = new();
    private readonly ServiceProvider _services = new ServiceCollection().AddSingleton(new SecretStore()).BuildServiceProvider();
    private readonly int _port = Ports.Free();
    private readonly string _dir = Directory.CreateTempSubdirectory("bowline-tracing-").FullName;
    private OtlpReceiver _collector = null!;
    private ListenerServer? _server;

    public async Task InitializeAsync() => _collector = await OtlpReceiver.StartAsync();

    public async Task DisposeAsync()
    {
        if (_server is not null)
        {
            await _server.StopAsync(Timeouts.Token());
            await _server.DisposeAsync();
        }
        await _services.DisposeAsync();
        _compiler.Dispose();
        await _collector.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    private string LogPath => Path.Combine(_dir, "access.log");

    private long SpansSent => _compiler.Stats.Get("tracing.opentelemetry.spans_sent").Value;

    private static HttpConnectionManager.Types.Tracing Otel(double randomSampling, bool http = false)
    {
        var otel = new OpenTelemetryConfig { ServiceName = "productpage.default" };
        if (http)
        {
            otel.HttpService = new HttpService { HttpUri = new HttpUri { Uri = "http://otel-collector.observability:4318/v1/traces", Cluster = "otel-http", Timeout = Duration.FromTimeSpan(TimeSpan.FromSeconds(5)) } };
        }
        else
        {
            otel.GrpcService = new GrpcService { EnvoyGrpc = new GrpcService.Types.EnvoyGrpc { ClusterName = "otel", Authority = "otel-collector.observability.svc.cluster.local" } };
        }
        return new HttpConnectionManager.Types.Tracing
        {
            RandomSampling = new Percent { Value = randomSampling },
            ClientSampling = new Percent { Value = 100 },
            OverallSampling = new Percent { Value = 100 },
            Provider = new Envoy.Config.Trace.V3.Tracing.Types.Http { Name = "envoy.tracers.opentelemetry", TypedConfig = Any.Pack(otel) },
            CustomTags = { new Envoy.Type.Tracing.V3.CustomTag { Tag = "istio.canonical_service", Literal = new Envoy.Type.Tracing.V3.CustomTag.Types.Literal { Value = "productpage" } } },
        };
    }

    private const string LoggedHeaders = "%REQ(TRACEPARENT)% %REQ(X-B3-TRACEID)% %REQ(X-B3-SPANID)% %REQ(X-B3-PARENTSPANID)% %REQ(X-B3-SAMPLED)% %REQ(B3)%\n";

    private Task StartAsync(HttpConnectionManager.Types.Tracing tracing, bool loopbackInternal = false, TrafficDirection direction = TrafficDirection.Outbound) =>
        StartAsync(tracing, loopbackInternal, direction, LoggedHeaders, null);

    private async Task StartAsync(HttpConnectionManager.Types.Tracing tracing, bool loopbackInternal, TrafficDirection direction, string logFormat, Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig? requestId)
    {
        var hcm = new HttpConnectionManager
        {
            StatPrefix = "outbound_0.0.0.0_9080",
            Tracing = tracing,
            RouteConfig = RouteConfig("local", VirtualHost("all", ["*"],
                new Route
                {
                    Name = "details",
                    Match = Prefix("/details"),
                    Decorator = new Decorator { Operation = "details.default.svc.cluster.local:9080/*" },
                    DirectResponse = new DirectResponseAction { Status = 200, Body = new DataSource { InlineString = "ok" } },
                },
                new Route
                {
                    Name = "broken",
                    Match = Prefix("/broken"),
                    DirectResponse = new DirectResponseAction { Status = 503 },
                })),
        };
        if (requestId is not null)
        {
            hcm.RequestIdExtension = new RequestIDExtension { TypedConfig = Any.Pack(requestId) };
        }
        if (loopbackInternal)
        {
            hcm.InternalAddressConfig = new HttpConnectionManager.Types.InternalAddressConfig { CidrRanges = { new Envoy.Config.Core.V3.CidrRange { AddressPrefix = "127.0.0.0", PrefixLen = 8 } } };
        }
        hcm.HttpFilters.Add(RouterFilter());
        hcm.AccessLog.Add(new AccessLog
        {
            Name = "envoy.access_loggers.file",
            TypedConfig = Any.Pack(new FileAccessLog { Path = LogPath, LogFormat = new SubstitutionFormatString { TextFormatSource = new DataSource { InlineString = logFormat } } }),
        });
        var listener = Listener("0.0.0.0_9080", _port, "127.0.0.1", HttpConnectionManagerFilter(hcm));
        listener.TrafficDirection = direction;
        var snapshot = _compiler.Compile(listener,
            EdsCluster("otel", http2: true), Endpoints("otel", ("127.0.0.1", _collector.GrpcPort, 1)),
            EdsCluster("otel-http"), Endpoints("otel-http", ("127.0.0.1", _collector.HttpPort, 1)));
        _server = await _compiler.ServeAsync(snapshot.Listeners["0.0.0.0_9080"], _services);
    }

    /// <summary>Sends each request (headers given as name, value pairs) and returns the access log's lines, one per request.</summary>
    private async Task<string[]> SendAsync(params (string Path, (string, string)[] Headers)[] requests)
    {
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{_port}"), Timeout = Timeouts.Default };
        foreach (var (path, headers) in requests)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, path);
            foreach (var (name, value) in headers)
            {
                request.Headers.TryAddWithoutValidation(name, value);
            }
            using var response = await http.SendAsync(request);
        }
        await _compiler.AccessLogs.Get(LogPath).FlushAsync().WaitAsync(Timeouts.Default);
        return File.ReadAllLines(LogPath);
    }

    [Fact]
    public async Task Sampled_SpanReachesTheCollectorOverGrpc_NamedByTheDecorator_WithEnvoysTags()
    {
        await StartAsync(Otel(100));

        var logged = Assert.Single(await SendAsync(("/details/1?x=y", [("x-request-id", "5f1b6c1e-0000-4000-8000-000000000001"), ("user-agent", "curl/8.0")])));

        var span = Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal("details.default.svc.cluster.local:9080/*", span.Name);
        Assert.Equal(ReceivedSpan.KindClient, span.Kind);
        Assert.Equal("productpage.default", span.ServiceName);
        Assert.Equal("", span.ParentSpanId);
        Assert.Equal("proxy", span.Attributes["component"]);
        Assert.Equal("GET", span.Attributes["http.method"]);
        Assert.Equal("200", span.Attributes["http.status_code"]);
        Assert.Equal($"http://127.0.0.1:{_port}/details/1?x=y", span.Attributes["http.url"]);
        // The id as sent on: the UUID extension packed the decision into it.
        Assert.Equal("5f1b6c1e-0000-9000-8000-000000000001", span.Attributes["guid:x-request-id"]);
        Assert.Equal("curl/8.0", span.Attributes["user_agent"]);
        Assert.Equal("-", span.Attributes["response_flags"]);
        Assert.Equal("productpage", span.Attributes["istio.canonical_service"]);
        Assert.Equal(_compiler.Options.NodeId, span.Attributes["node_id"]);
        Assert.True(span.EndNanos >= span.StartNanos);
        // What went upstream names this span as the parent, sampled.
        Assert.StartsWith($"00-{span.TraceId}-{span.SpanId}-01 ", logged, StringComparison.Ordinal);
        Assert.Equal(1, SpansSent);
    }

    [Fact]
    public async Task OtlpHttp_SpanReachesTheCollector_AndA5xxIsAnError()
    {
        await StartAsync(Otel(100, http: true), direction: TrafficDirection.Inbound);

        await SendAsync(("/broken", []));

        var span = Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal(ReceivedSpan.KindServer, span.Kind);
        Assert.Equal($"127.0.0.1:{_port}/broken", span.Name);
        Assert.Equal("503", span.Attributes["http.status_code"]);
        Assert.Equal("true", span.Attributes["error"]);
        Assert.Equal(ReceivedSpan.StatusError, span.StatusCode);
    }

    [Fact]
    public async Task TrustedDownstream_W3CContextIsContinued_WithItsDecision()
    {
        await StartAsync(Otel(0), loopbackInternal: true);
        const string Trace = "4bf92f3577b34da6a3ce929d0e0e4736";

        var lines = await SendAsync(
            ("/details", [("traceparent", $"00-{Trace}-00f067aa0ba902b7-01"), ("tracestate", "vendor=1")]),
            ("/details", [("traceparent", $"00-{Trace}-00f067aa0ba902b8-00")]));

        var span = Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal(Trace, span.TraceId);
        Assert.Equal("00f067aa0ba902b7", span.ParentSpanId);
        Assert.StartsWith($"00-{Trace}-{span.SpanId}-01 ", lines[0], StringComparison.Ordinal);
        // Not sampled upstream of us: not sampled here, and the next hop is told so, in the same trace.
        Assert.Matches($"^00-{Trace}-[0-9a-f]{{16}}-00 ", lines[1]);
        Assert.Equal(1, SpansSent);
    }

    [Fact]
    public async Task UntrustedDownstream_CannotForceSampling_ButItsTraceIsJoined()
    {
        // No internal addresses and no mTLS peer: the caller is outside the mesh.
        await StartAsync(Otel(0));
        const string Trace = "4bf92f3577b34da6a3ce929d0e0e4736";

        var lines = await SendAsync(
            ("/details", [("traceparent", $"00-{Trace}-00f067aa0ba902b7-01")]),
            ("/details", [("x-envoy-force-trace", "true"), ("x-b3-sampled", "1")]));

        Assert.Matches($"^00-{Trace}-[0-9a-f]{{16}}-00 ", lines[0]);
        Assert.Matches("^00-[0-9a-f]{32}-[0-9a-f]{16}-00 ", lines[1]);
        Assert.Equal(0, SpansSent);
        Assert.Equal(2, _compiler.Stats.Get("http.outbound_0.0.0.0_9080.tracing.not_traceable").Value);
    }

    [Fact]
    public async Task ClientTraceId_ForcesSampling_ThroughClientSampling_EvenFromOutside()
    {
        await StartAsync(Otel(0));

        await SendAsync(("/details", [("x-client-trace-id", "abc")]));

        Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal(1, _compiler.Stats.Get("http.outbound_0.0.0.0_9080.tracing.client_enabled").Value);
    }

    [Fact]
    public async Task B3Multi_Continued_AndAnsweredInB3_KeepingA64BitTraceId()
    {
        await StartAsync(Otel(0), loopbackInternal: true);

        var line = Assert.Single(await SendAsync(("/details", [("x-b3-traceid", "a3ce929d0e0e4736"), ("x-b3-spanid", "00f067aa0ba902b7"), ("x-b3-sampled", "1")])));

        var span = Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal("0000000000000000a3ce929d0e0e4736", span.TraceId);
        Assert.Equal("00f067aa0ba902b7", span.ParentSpanId);
        Assert.Equal($"00-{span.TraceId}-{span.SpanId}-01 a3ce929d0e0e4736 {span.SpanId} 00f067aa0ba902b7 1 -", line);
    }

    [Fact]
    public async Task B3Single_Continued_InB3Single()
    {
        await StartAsync(Otel(0), loopbackInternal: true);
        const string Trace = "80f198ee56343ba864fe8b2a57d3eff7";

        var line = Assert.Single(await SendAsync(("/details", [("b3", $"{Trace}-e457b5a2e4d86bd1-1-05e3ac9a4f6e3b90")])));

        var span = Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal(Trace, span.TraceId);
        Assert.Equal("e457b5a2e4d86bd1", span.ParentSpanId);
        Assert.EndsWith($" {Trace}-{span.SpanId}-1-e457b5a2e4d86bd1", line, StringComparison.Ordinal);
    }

    [Fact]
    public async Task RandomSampling_DrawsFromTheRequestId_AsEnvoysUuidExtension()
    {
        await StartAsync(Otel(50));

        // The first 8 hex digits mod 10,000 against 5,000: 0x00000001 = 1 is in, 0x00001388 = 5,000 is out.
        var lines = await SendAsync(
            ("/details", [("x-request-id", "00000001-0000-4000-8000-000000000000")]),
            ("/details", [("x-request-id", "00001388-0000-4000-8000-000000000000")]));

        Assert.EndsWith("-01", lines[0].Split(' ')[0], StringComparison.Ordinal);
        Assert.EndsWith("-00", lines[1].Split(' ')[0], StringComparison.Ordinal);
        Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal(1, SpansSent);
    }

    private const string RequestId = "5f1b6c1e-0000-4000-8000-000000000001";

    [Fact]
    public async Task PackTraceReason_ASampledRequestsId_CarriesTheDecision()
    {
        await StartAsync(Otel(100), false, TrafficDirection.Outbound, "%REQ(X-REQUEST-ID)%\n", null);

        var line = Assert.Single(await SendAsync(("/details", [("x-request-id", RequestId)])));

        // Envoy's UUID extension: the version digit becomes '9', sampled.
        Assert.Equal("5f1b6c1e-0000-9000-8000-000000000001", line);
    }

    [Fact]
    public async Task PackedDecision_FromATrustedDownstream_IsKept()
    {
        await StartAsync(Otel(0), true, TrafficDirection.Outbound, "%REQ(X-REQUEST-ID)%\n", null);

        var line = Assert.Single(await SendAsync(("/details", [("x-request-id", "5f1b6c1e-0000-9000-8000-000000000001")])));

        Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.Equal("5f1b6c1e-0000-9000-8000-000000000001", line);
    }

    [Fact]
    public async Task PackedDecision_FromOutside_IsIgnored_AndCleared()
    {
        await StartAsync(Otel(0), false, TrafficDirection.Outbound, "%REQ(X-REQUEST-ID)%\n", null);

        var line = Assert.Single(await SendAsync(("/details", [("x-request-id", "5f1b6c1e-0000-a000-8000-000000000001")])));

        Assert.Equal(RequestId, line);
        Assert.Equal(0, SpansSent);
    }

    [Fact]
    public async Task UuidExtension_WithoutPacking_LeavesTheRequestIdAlone()
    {
        await StartAsync(Otel(100), false, TrafficDirection.Outbound, "%REQ(X-REQUEST-ID)%\n", new Envoy.Extensions.RequestId.Uuid.V3.UuidRequestIdConfig { PackTraceReason = false });

        var line = Assert.Single(await SendAsync(("/details", [("x-request-id", RequestId)])));

        Assert.Equal(RequestId, line);
        Assert.Single(await _collector.WaitForSpansAsync(1));
    }

    [Fact]
    public void RequestIdExtension_OtherThanEnvoysUuid_IsNacked()
    {
        var hcm = new HttpConnectionManager
        {
            StatPrefix = "x",
            RequestIdExtension = new RequestIDExtension { TypedConfig = Any.Pack(new Struct()) },
            RouteConfig = RouteConfig("local", VirtualHost("all", ["*"])),
            HttpFilters = { RouterFilter() },
        };

        var e = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(Listener("l", _port, "127.0.0.1", HttpConnectionManagerFilter(hcm))));
        Assert.Contains("request_id_extension", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MalformedTraceparent_StartsANewTrace()
    {
        await StartAsync(Otel(100), loopbackInternal: true);

        var line = Assert.Single(await SendAsync(("/details", [("traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01")])));

        var span = Assert.Single(await _collector.WaitForSpansAsync(1));
        Assert.NotEqual("00000000000000000000000000000000", span.TraceId);
        Assert.Equal("", span.ParentSpanId);
        Assert.StartsWith($"00-{span.TraceId}-{span.SpanId}-01", line, StringComparison.Ordinal);
    }

    public static TheoryData<string, Action<HttpConnectionManager.Types.Tracing>> BadTracing => new()
    {
        { "is not supported; Bowline exports with OTLP", t => t.Provider.TypedConfig = Any.Pack(new Envoy.Extensions.Filters.Http.Router.V3.Router()) },
        { "is not a percentage", t => t.RandomSampling = new Percent { Value = 150 } },
        { "metadata", t => t.CustomTags.Add(new Envoy.Type.Tracing.V3.CustomTag { Tag = "m", Metadata = new Envoy.Type.Tracing.V3.CustomTag.Types.Metadata() }) },
        { "google_grpc is not", t => t.Provider.TypedConfig = Any.Pack(new OpenTelemetryConfig { GrpcService = new GrpcService { GoogleGrpc = new GrpcService.Types.GoogleGrpc { TargetUri = "x:1", StatPrefix = "x" } } }) },
        { "sampler", t => t.Provider.TypedConfig = Any.Pack(new OpenTelemetryConfig { GrpcService = new GrpcService { EnvoyGrpc = new GrpcService.Types.EnvoyGrpc { ClusterName = "otel" } }, Sampler = new TypedExtensionConfig { Name = "s", TypedConfig = Any.Pack(new Empty()) } }) },
    };

    [Theory]
    [MemberData(nameof(BadTracing))]
    public void UnsupportedTracing_IsNacked_NamingTheField(string message, Action<HttpConnectionManager.Types.Tracing> mutate)
    {
        var tracing = Otel(100);
        mutate(tracing);
        var hcm = new HttpConnectionManager { StatPrefix = "p", Tracing = tracing, RouteConfig = RouteConfig("local") };
        hcm.HttpFilters.Add(RouterFilter());

        var error = Assert.Throws<ProxyConfigException>(() => _compiler.Compile(Listener("l", Ports.Free(), "127.0.0.1", HttpConnectionManagerFilter(hcm))));

        Assert.Contains(message, error.Message, StringComparison.Ordinal);
        Assert.Contains("tracing", error.Message, StringComparison.Ordinal);
    }
}

