using System.Net;
using System.Threading.Channels;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Logging;

namespace Bowline.Testing;

/// <summary>A span as an OTLP collector received it; ids in lowercase hex, attributes as strings.</summary>
internal sealed record ReceivedSpan(string TraceId, string SpanId, string ParentSpanId, string Name, int Kind, IReadOnlyDictionary<string, string> Attributes,
    string ServiceName, int StatusCode, ulong StartNanos, ulong EndNanos)
{
    public const int KindServer = 2;
    public const int KindClient = 3;
    public const int StatusError = 2;
}

/// <summary>
/// An OTLP trace collector on loopback, speaking the real wire protocol: gRPC (<c>TraceService/Export</c> over h2c)
/// on one port and OTLP/HTTP (<c>POST /v1/traces</c>, protobuf) on another. It decodes
/// <c>ExportTraceServiceRequest</c> from the protobuf wire format itself, reading only the fields tests look at.
/// </summary>
/// <remarks>Compiled into the test projects that host ASP.NET Core (proxy, end-to-end), not the shared set every project gets.</remarks>
internal sealed class OtlpReceiver : IAsyncDisposable
{
    /// <summary>How long a wait for spans is bounded by: generous, since a span is batched before it is exported.</summary>
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);

    private readonly WebApplication _app;
    private readonly Channel<ReceivedSpan> _spans = Channel.CreateUnbounded<ReceivedSpan>();

    private OtlpReceiver(WebApplication app, int grpcPort, int httpPort)
    {
        _app = app;
        GrpcPort = grpcPort;
        HttpPort = httpPort;
    }

    public int GrpcPort { get; }

    public int HttpPort { get; }

    /// <summary>Export calls answered.</summary>
    public int Exports => Volatile.Read(ref _exports);

    private int _exports;

    public static async Task<OtlpReceiver> StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        var grpcPort = Ports.Free();
        var httpPort = Ports.Free();
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Listen(IPAddress.Loopback, grpcPort, l => l.Protocols = HttpProtocols.Http2);
            k.Listen(IPAddress.Loopback, httpPort, l => l.Protocols = HttpProtocols.Http1AndHttp2);
        });
        var app = builder.Build();
        var receiver = new OtlpReceiver(app, grpcPort, httpPort);
        app.MapPost("/opentelemetry.proto.collector.trace.v1.TraceService/Export", receiver.GrpcExportAsync);
        app.MapPost("/v1/traces", receiver.HttpExportAsync);
        await app.StartAsync(new CancellationTokenSource(Wait).Token);
        return receiver;
    }

    /// <summary>Waits (bounded) until at least <paramref name="count"/> spans arrived and returns them all so far.</summary>
    public async Task<List<ReceivedSpan>> WaitForSpansAsync(int count, TimeSpan? timeout = null)
    {
        using var cts = new CancellationTokenSource(timeout ?? Wait);
        var spans = new List<ReceivedSpan>();
        while (spans.Count < count)
        {
            spans.Add(await _spans.Reader.ReadAsync(cts.Token));
        }
        while (_spans.Reader.TryRead(out var more))
        {
            spans.Add(more);
        }
        return spans;
    }

    /// <summary>Every span received so far, without waiting.</summary>
    public List<ReceivedSpan> Drain()
    {
        var spans = new List<ReceivedSpan>();
        while (_spans.Reader.TryRead(out var span))
        {
            spans.Add(span);
        }
        return spans;
    }

    private async Task GrpcExportAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        var bytes = body.ToArray();
        // One length-prefixed message: a compressed flag, a 4-byte big-endian length, the message.
        if (bytes.Length < 5 || bytes[0] != 0)
        {
            context.Response.StatusCode = 200;
            context.Response.ContentType = "application/grpc";
            context.Response.AppendTrailer("grpc-status", "12");
            return;
        }
        var length = (bytes[1] << 24) | (bytes[2] << 16) | (bytes[3] << 8) | bytes[4];
        Decode(bytes.AsSpan(5, length).ToArray());
        context.Response.ContentType = "application/grpc";
        await context.Response.Body.WriteAsync(new byte[5]);
        context.Response.AppendTrailer("grpc-status", "0");
    }

    private async Task HttpExportAsync(HttpContext context)
    {
        using var body = new MemoryStream();
        await context.Request.Body.CopyToAsync(body);
        Decode(body.ToArray());
        context.Response.ContentType = "application/x-protobuf";
    }

    private void Decode(byte[] message)
    {
        Interlocked.Increment(ref _exports);
        foreach (var resourceSpans in Fields(message, 1))
        {
            var service = "";
            foreach (var resource in Fields(resourceSpans, 1))
            {
                service = Attributes(resource, 1).GetValueOrDefault("service.name", "");
            }
            foreach (var scopeSpans in Fields(resourceSpans, 2))
            {
                foreach (var span in Fields(scopeSpans, 2))
                {
                    _spans.Writer.TryWrite(Span(span, service));
                }
            }
        }
    }

    private static ReceivedSpan Span(byte[] span, string service)
    {
        string traceId = "", spanId = "", parent = "", name = "";
        int kind = 0, status = 0;
        ulong start = 0, end = 0;
        var input = new CodedInputStream(span);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            switch (WireFormat.GetTagFieldNumber(tag))
            {
                case 1: traceId = Convert.ToHexStringLower(input.ReadBytes().ToByteArray()); break;
                case 2: spanId = Convert.ToHexStringLower(input.ReadBytes().ToByteArray()); break;
                case 4: parent = Convert.ToHexStringLower(input.ReadBytes().ToByteArray()); break;
                case 5: name = input.ReadString(); break;
                case 6: kind = input.ReadEnum(); break;
                case 7: start = input.ReadFixed64(); break;
                case 8: end = input.ReadFixed64(); break;
                case 15:
                    var statusInput = new CodedInputStream(input.ReadBytes().ToByteArray());
                    uint st;
                    while ((st = statusInput.ReadTag()) != 0)
                    {
                        if (WireFormat.GetTagFieldNumber(st) == 3)
                        {
                            status = statusInput.ReadEnum();
                        }
                        else
                        {
                            statusInput.SkipLastField();
                        }
                    }
                    break;
                default: input.SkipLastField(); break;
            }
        }
        return new ReceivedSpan(traceId, spanId, parent, name, kind, Attributes(span, 9), service, status, start, end);
    }

    /// <summary>The KeyValue list at <paramref name="field"/>, with string, bool, int and double values as strings.</summary>
    private static Dictionary<string, string> Attributes(byte[] message, int field)
    {
        var attributes = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var keyValue in Fields(message, field))
        {
            var input = new CodedInputStream(keyValue);
            string key = "", value = "";
            uint tag;
            while ((tag = input.ReadTag()) != 0)
            {
                if (WireFormat.GetTagFieldNumber(tag) == 1)
                {
                    key = input.ReadString();
                    continue;
                }
                if (WireFormat.GetTagFieldNumber(tag) != 2)
                {
                    input.SkipLastField();
                    continue;
                }
                var any = new CodedInputStream(input.ReadBytes().ToByteArray());
                uint at;
                while ((at = any.ReadTag()) != 0)
                {
                    value = WireFormat.GetTagFieldNumber(at) switch
                    {
                        1 => any.ReadString(),
                        2 => any.ReadBool() ? "true" : "false",
                        3 => any.ReadInt64().ToString(System.Globalization.CultureInfo.InvariantCulture),
                        4 => any.ReadDouble().ToString(System.Globalization.CultureInfo.InvariantCulture),
                        _ => Skip(any),
                    };
                }
            }
            attributes[key] = value;
        }
        return attributes;
    }

    private static string Skip(CodedInputStream input)
    {
        input.SkipLastField();
        return "";
    }

    /// <summary>The length-delimited occurrences of <paramref name="field"/> in <paramref name="message"/>.</summary>
    private static List<byte[]> Fields(byte[] message, int field)
    {
        var found = new List<byte[]>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == field && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                found.Add(input.ReadBytes().ToByteArray());
            }
            else
            {
                input.SkipLastField();
            }
        }
        return found;
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync(new CancellationTokenSource(Wait).Token);
        await _app.DisposeAsync();
    }
}
