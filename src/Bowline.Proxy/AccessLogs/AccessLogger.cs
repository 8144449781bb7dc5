using System.Text;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Envoy.Config.Accesslog.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.AccessLoggers.File.V3;

namespace Bowline.Proxy.AccessLogs;

/// <summary>
/// One entry of an HTTP connection manager's <c>access_log</c>, compiled once per update: its filter, its format and
/// the file it appends to (<c>envoy.access_loggers.file</c>; <c>/dev/stdout</c> is a path like any other). Per request
/// it only reads the finished request's record; formatting reuses one buffer per thread.
/// </summary>
internal sealed class AccessLogger
{
    public const string FileTypeUrl = "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog";

    /// <summary>Envoy's default format, for a file logger that names none.</summary>
    private const string EnvoyDefaultFormat = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
        + "%BYTES_RECEIVED% %BYTES_SENT% %DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" "
        + "\"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\"\n";

    [ThreadStatic]
    private static StringBuilder? t_line;

    private readonly AccessLogFilter? _filter;
    private readonly AccessLogFormat _format;

    private AccessLogger(AccessLogFilter? filter, AccessLogFormat format, AccessLogFile file)
    {
        _filter = filter;
        _format = format;
        File = file;
    }

    public AccessLogFile File { get; }

    /// <summary>Runs every logger of a finished request or connection; a logger that fails is counted, never thrown to the request.</summary>
    public static void LogAll(AccessLogger[] loggers, AccessLogInput input)
    {
        foreach (var logger in loggers)
        {
            try
            {
                logger.Log(input);
            }
            catch (Exception e) when (e is FormatException or InvalidOperationException or ArgumentException or IndexOutOfRangeException)
            {
                logger.File.CountFailedLine();
            }
        }
    }

    public void Log(AccessLogInput stream)
    {
        if (_filter?.Admits(stream) == false)
        {
            return;
        }
        var line = t_line ??= new StringBuilder(512);
        line.Clear();
        _format.Write(line, stream);
        File.Append(line);
        if (line.Capacity > 16 * 1024)
        {
            // One huge line (a long header) should not pin its buffer on the thread forever.
            t_line = null;
        }
    }

    public static AccessLogger Compile(AccessLog proto, AccessLogFiles files, string where)
    {
        where += $" access_log {proto.Name}";
        XdsFields.Check(proto, where, "name", "filter", "typed_config");
        if (proto.TypedConfig?.TypeUrl != FileTypeUrl)
        {
            throw new ProxyConfigException($"{where}: access logger {proto.TypedConfig?.TypeUrl ?? "(no typed_config)"} is not supported; Bowline writes {FileTypeUrl} (path /dev/stdout for standard output)");
        }
        var file = proto.TypedConfig.Unpack<FileAccessLog>();
        XdsFields.Check(file, where, "path", "format", "json_format", "typed_json_format", "log_format");
        if (file.Path.Length == 0)
        {
            throw new ProxyConfigException($"{where}: path is required (a file, or /dev/stdout)");
        }
        var format = file.AccessLogFormatCase switch
        {
            FileAccessLog.AccessLogFormatOneofCase.None => AccessLogFormat.Text(EnvoyDefaultFormat, where),
#pragma warning disable CS0612 // format, json_format and typed_json_format are deprecated in favour of log_format, and mean the same
            FileAccessLog.AccessLogFormatOneofCase.Format => AccessLogFormat.Text(file.Format, where),
            FileAccessLog.AccessLogFormatOneofCase.JsonFormat => AccessLogFormat.Json(file.JsonFormat, where, typed: false),
            FileAccessLog.AccessLogFormatOneofCase.TypedJsonFormat => AccessLogFormat.Json(file.TypedJsonFormat, where),
#pragma warning restore CS0612
            _ => Format(file.LogFormat, where + " log_format"),
        };
        var filter = proto.Filter is { } f ? AccessLogFilter.Compile(f, where + " filter") : null;
        return new AccessLogger(filter, format, files.Get(file.Path));
    }

    private static AccessLogFormat Format(SubstitutionFormatString format, string where)
    {
        XdsFields.Check(format, where, "text_format", "json_format", "text_format_source", "omit_empty_values", "content_type");
        if (format.OmitEmptyValues)
        {
            throw new ProxyConfigException($"{where}: omit_empty_values is not supported; missing values are written as '-' (text) or null (JSON)");
        }
        return format.FormatCase switch
        {
#pragma warning disable CS0612
            SubstitutionFormatString.FormatOneofCase.TextFormat => AccessLogFormat.Text(format.TextFormat, where),
#pragma warning restore CS0612
            SubstitutionFormatString.FormatOneofCase.JsonFormat => AccessLogFormat.Json(format.JsonFormat, where),
            SubstitutionFormatString.FormatOneofCase.TextFormatSource when format.TextFormatSource.SpecifierCase == DataSource.SpecifierOneofCase.InlineString
                => AccessLogFormat.Text(format.TextFormatSource.InlineString, where),
            SubstitutionFormatString.FormatOneofCase.TextFormatSource => throw new ProxyConfigException($"{where}: text_format_source must be an inline_string"),
            _ => throw new ProxyConfigException($"{where}: a format is required (text_format_source or json_format)"),
        };
    }
}

/// <summary>
/// Envoy's <c>AccessLogFilter</c>, compiled: status code and duration comparisons, response flags, a request header,
/// not-health-check, and/or. Filters that need what Bowline does not have (runtime, tracing, CEL extensions, gRPC
/// status, metadata) are NACKed by name.
/// </summary>
internal abstract class AccessLogFilter
{
    public abstract bool Admits(AccessLogInput stream);

    public static AccessLogFilter Compile(Envoy.Config.Accesslog.V3.AccessLogFilter filter, string where)
    {
        switch (filter.FilterSpecifierCase)
        {
            case Envoy.Config.Accesslog.V3.AccessLogFilter.FilterSpecifierOneofCase.StatusCodeFilter:
                return new Comparison(Compare(filter.StatusCodeFilter.Comparison, where + " status_code_filter"), s => s.Info.ResponseCode);
            case Envoy.Config.Accesslog.V3.AccessLogFilter.FilterSpecifierOneofCase.DurationFilter:
                return new Comparison(Compare(filter.DurationFilter.Comparison, where + " duration_filter"),
                    s => AccessLogFormat.Milliseconds(s, s.Info.StartTimestamp, s.Info.EndTimestamp) as long? ?? 0);
            case Envoy.Config.Accesslog.V3.AccessLogFilter.FilterSpecifierOneofCase.NotHealthCheckFilter:
                // Bowline answers no health checks itself (Envoy's health_check filter), so no request is one.
                return Always.Instance;
            case Envoy.Config.Accesslog.V3.AccessLogFilter.FilterSpecifierOneofCase.ResponseFlagFilter:
                return ResponseFlag(filter.ResponseFlagFilter.Flags, where + " response_flag_filter");
            case Envoy.Config.Accesslog.V3.AccessLogFilter.FilterSpecifierOneofCase.HeaderFilter:
                var condition = RouteCompiler.Header(filter.HeaderFilter.Header, where + " header_filter");
                return new Predicate(s => s.Http is { } http && condition.Matches(http.Request));
            case Envoy.Config.Accesslog.V3.AccessLogFilter.FilterSpecifierOneofCase.AndFilter:
                var all = Children(filter.AndFilter.Filters, where + " and_filter");
                return new Predicate(s => all.All(f => f.Admits(s)));
            case Envoy.Config.Accesslog.V3.AccessLogFilter.FilterSpecifierOneofCase.OrFilter:
                var any = Children(filter.OrFilter.Filters, where + " or_filter");
                return new Predicate(s => any.Any(f => f.Admits(s)));
            default:
                throw new ProxyConfigException($"{where}: {filter.FilterSpecifierCase} is not supported; use status_code_filter, duration_filter, response_flag_filter, header_filter, not_health_check_filter, and_filter or or_filter");
        }
    }

    private static AccessLogFilter[] Children(Google.Protobuf.Collections.RepeatedField<Envoy.Config.Accesslog.V3.AccessLogFilter> filters, string where) =>
        filters.Count >= 2 ? [.. filters.Select((f, i) => Compile(f, $"{where}[{i}]"))] : throw new ProxyConfigException($"{where}: needs at least two filters (Envoy's rule)");

    private static Func<long, bool> Compare(ComparisonFilter comparison, string where)
    {
        if (comparison is null)
        {
            throw new ProxyConfigException($"{where}: comparison is required");
        }
        XdsFields.Check(comparison, where, "op", "value");
        // Bowline has no runtime layer, so a runtime_key never overrides: the default value is the value.
        long value = comparison.Value?.DefaultValue ?? 0;
        return comparison.Op switch
        {
            ComparisonFilter.Types.Op.Eq => v => v == value,
            ComparisonFilter.Types.Op.Ge => v => v >= value,
            ComparisonFilter.Types.Op.Le => v => v <= value,
            _ => throw new ProxyConfigException($"{where}: op {comparison.Op} is not one of EQ, GE, LE"),
        };
    }

    private static Predicate ResponseFlag(Google.Protobuf.Collections.RepeatedField<string> codes, string where)
    {
        var wanted = ResponseFlags.None;
        foreach (var code in codes)
        {
            var known = ResponseFlagCodes.All.FirstOrDefault(c => c.Code == code);
            if (known.Code is null)
            {
                throw new ProxyConfigException($"{where}: response flag {code} is not one Bowline sets ({string.Join(", ", ResponseFlagCodes.All.Select(c => c.Code))})");
            }
            wanted |= known.Flag;
        }
        // No flags listed: any flag at all (Envoy's rule).
        return wanted == ResponseFlags.None ? new Predicate(s => s.Info.Flags != ResponseFlags.None) : new Predicate(s => (s.Info.Flags & wanted) != 0);
    }

    private sealed class Always : AccessLogFilter
    {
        public static readonly Always Instance = new();

        public override bool Admits(AccessLogInput stream) => true;
    }

    private sealed class Comparison(Func<long, bool> compare, Func<AccessLogInput, long> read) : AccessLogFilter
    {
        public override bool Admits(AccessLogInput stream) => compare(read(stream));
    }

    private sealed class Predicate(Func<AccessLogInput, bool> test) : AccessLogFilter
    {
        public override bool Admits(AccessLogInput stream) => test(stream);
    }
}
