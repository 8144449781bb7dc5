using System.Globalization;
using System.Text;
using System.Text.Json;
using Bowline.Proxy.Configuration;
using Bowline.Proxy.Http;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.Proxy.AccessLogs;

/// <summary>
/// Envoy's access-log format-string language, compiled once per update: literal text and <c>%COMMAND%</c>,
/// <c>%COMMAND(arg)%</c>, <c>%COMMAND(arg):max%</c> operators, each bound at compile time to the read of one field of
/// the finished request (its <see cref="RequestInfo"/>, headers and connection), so a log line costs one pass over a
/// few delegates. A text format writes <c>-</c> for a missing value; a JSON format writes <c>null</c>, and numbers as
/// numbers (Envoy's typed JSON). An unknown operator is a NACK naming it.
/// </summary>
internal sealed class AccessLogFormat
{
    private readonly Part[]? _text;

    /// <summary>Per JSON key: its encoded <c>"key":</c> prefix (with the comma before all but the first) and its parts.</summary>
    private readonly (string Prefix, Part[] Parts)[]? _json;
    private readonly bool _typed;

    private AccessLogFormat(Part[]? text, (string, Part[])[]? json, bool typed = true)
    {
        _text = text;
        _json = json;
        _typed = typed;
    }

    /// <summary>A text format: literal text and operators, as written (no newline is added).</summary>
    public static AccessLogFormat Text(string format, string where) => new(Parse(format, where), null);

    /// <summary>A JSON format: each key's string value is a format; one object per line.</summary>
    /// <param name="typed">Numbers stay numbers (log_format's json_format, typed_json_format); the deprecated json_format writes every value as a string.</param>
    public static AccessLogFormat Json(Struct format, string where, bool typed = true)
    {
        var fields = new List<(string, Part[])>();
        foreach (var (key, value) in format.Fields)
        {
            if (value.KindCase != Value.KindOneofCase.StringValue)
            {
                throw new ProxyConfigException($"{where}: json_format key {key} is a {value.KindCase}; Bowline formats string values (nested objects are not supported)");
            }
            // The key is encoded once, here, with its separator: '{' is written before the first, ',' before the rest.
            fields.Add(((fields.Count == 0 ? "" : ",") + JsonSerializer.Serialize(key, AccessLogJsonContext.Default.String) + ":", Parse(value.StringValue, $"{where} json_format {key}")));
        }
        return new AccessLogFormat(null, [.. fields], typed);
    }

    /// <summary>Writes the line for a finished request; the caller hands the text to a sink.</summary>
    public void Write(StringBuilder line, AccessLogInput stream)
    {
        if (_text is not null)
        {
            WriteParts(line, _text, stream);
            return;
        }
        line.Append('{');
        foreach (var (prefix, parts) in _json!)
        {
            line.Append(prefix);
            if (parts is [{ Literal: null } only])
            {
                // A lone operator keeps its type: numbers are numbers, a missing value is null.
                var value = only.Read!(stream);
                if (value is null)
                {
                    line.Append("null");
                }
                else if (value is long && _typed)
                {
                    line.Append(Convert.ToString(value, CultureInfo.InvariantCulture));
                }
                else
                {
                    line.Append(JsonSerializer.Serialize(Truncate(Convert.ToString(value, CultureInfo.InvariantCulture)!, only.MaxLength), AccessLogJsonContext.Default.String));
                }
                continue;
            }
            var text = t_value ??= new StringBuilder();
            text.Clear();
            WriteParts(text, parts, stream);
            line.Append(JsonSerializer.Serialize(text.ToString(), AccessLogJsonContext.Default.String));
        }
        line.Append("}\n");
    }

    [ThreadStatic]
    private static StringBuilder? t_value;

    /// <summary>Literals as written, operators as their value or <c>-</c> when missing.</summary>
    private static void WriteParts(StringBuilder line, Part[] parts, AccessLogInput stream)
    {
        foreach (var part in parts)
        {
            if (part.Literal is { } literal)
            {
                line.Append(literal);
                continue;
            }
            var value = part.Read!(stream)?.ToString();
            line.Append(string.IsNullOrEmpty(value) ? "-" : Truncate(value, part.MaxLength));
        }
    }

    private static string Truncate(string value, int max) => max > 0 && value.Length > max ? value[..max] : value;

    /// <summary>A literal, or an operator: how to read its value from a finished request (null: missing).</summary>
    private sealed record Part(string? Literal, Func<AccessLogInput, object?>? Read, int MaxLength);

    private static Part[] Parse(string format, string where)
    {
        var parts = new List<Part>();
        var literal = new StringBuilder();
        var i = 0;
        while (i < format.Length)
        {
            var c = format[i];
            if (c != '%')
            {
                literal.Append(c);
                i++;
                continue;
            }
            if (i + 1 < format.Length && format[i + 1] == '%')
            {
                literal.Append('%');
                i += 2;
                continue;
            }
            // The operator ends at the next '%' outside its parentheses (a START_TIME format holds '%' of its own).
            var open = format.IndexOf('(', i + 1);
            var next = format.IndexOf('%', i + 1);
            var close = open >= 0 && (next < 0 || open < next) ? format.IndexOf(')', open) : -1;
            var end = close >= 0 ? format.IndexOf('%', close) : next;
            if (end < 0)
            {
                throw new ProxyConfigException($"{where}: '%' at {i} opens an operator that is never closed; write %% for a literal percent sign");
            }
            if (literal.Length > 0)
            {
                parts.Add(new Part(literal.ToString(), null, 0));
                literal.Clear();
            }
            parts.Add(Operator(format[(i + 1)..end], where));
            i = end + 1;
        }
        if (literal.Length > 0)
        {
            parts.Add(new Part(literal.ToString(), null, 0));
        }
        return [.. parts];
    }

    private static Part Operator(string token, string where)
    {
        // COMMAND, COMMAND(arg), COMMAND(arg):max
        var name = token;
        string? argument = null;
        var max = 0;
        var open = token.IndexOf('(');
        if (open >= 0)
        {
            var close = token.LastIndexOf(')');
            if (close < open)
            {
                throw new ProxyConfigException($"{where}: operator %{token}% has an unclosed '('");
            }
            name = token[..open];
            argument = token[(open + 1)..close];
            var rest = token[(close + 1)..];
            if (rest.Length > 0)
            {
                if (rest[0] != ':' || !int.TryParse(rest.AsSpan(1), NumberStyles.None, CultureInfo.InvariantCulture, out max) || max <= 0)
                {
                    throw new ProxyConfigException($"{where}: operator %{token}%: expected ':<max length>' after ')'");
                }
            }
        }
        Func<AccessLogInput, object?> read = name switch
        {
            "START_TIME" => StartTime(argument, where),
            "REQ" => Header(argument, request: true, where),
            "RESP" => Header(argument, request: false, where),
            "PROTOCOL" => s => s.Http?.Request.Protocol,
            "RESPONSE_CODE" => s => (long)s.Info.ResponseCode,
            // Envoy writes "-" for no flags, in JSON too.
            "RESPONSE_FLAGS" => s => s.Info.Flags == ResponseFlags.None ? "-" : ResponseFlagCodes.Format(s.Info.Flags),
            "RESPONSE_CODE_DETAILS" => s => s.Info.ResponseCodeDetails,
            "CONNECTION_TERMINATION_DETAILS" => _ => null,
            "BYTES_RECEIVED" => s => s.Info.BytesReceived,
            "BYTES_SENT" => s => s.Info.BytesSent,
            "DURATION" => s => Milliseconds(s, s.Info.StartTimestamp, s.Info.EndTimestamp),
            "REQUEST_DURATION" => s => Milliseconds(s, s.Info.StartTimestamp, s.Info.UpstreamRequestTimestamp),
            "RESPONSE_DURATION" => s => Milliseconds(s, s.Info.StartTimestamp, s.Info.UpstreamFirstByteTimestamp),
            "UPSTREAM_HOST" => s => s.Info.UpstreamHost is { } host ? $"{host.Address}:{host.Port}" : null,
            "UPSTREAM_CLUSTER" or "UPSTREAM_CLUSTER_RAW" => s => s.Info.UpstreamCluster,
            // The upstream connection's local address is not recorded per request (the pool owns the sockets).
            "UPSTREAM_LOCAL_ADDRESS" => _ => null,
            "UPSTREAM_TRANSPORT_FAILURE_REASON" => s => s.Info.UpstreamTransportFailureReason,
            "UPSTREAM_REQUEST_ATTEMPT_COUNT" => s => (long)s.Info.Attempts,
            "DOWNSTREAM_REMOTE_ADDRESS" or "DOWNSTREAM_DIRECT_REMOTE_ADDRESS" => s => Address(s.RemoteAddress, s.RemotePort),
            "DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT" or "DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT" => s => s.RemoteAddress?.ToString(),
            "DOWNSTREAM_LOCAL_ADDRESS" => s => Address(s.LocalAddress, s.LocalPort),
            "DOWNSTREAM_LOCAL_PORT" => s => (long)s.LocalPort,
            "DOWNSTREAM_PEER_URI_SAN" => s => s.Connection?.Peer is { } peer ? string.Join(',', peer.SubjectAltNames.Uris) : null,
            "DOWNSTREAM_LOCAL_URI_SAN" => s => s.Connection?.LocalUri,
            "DOWNSTREAM_TLS_VERSION" => _ => null,
            "REQUESTED_SERVER_NAME" => s => s.Connection?.Metadata.ServerName,
            "ROUTE_NAME" => s => s.Info.RouteName,
            "HOSTNAME" => _ => Environment.MachineName,
            _ => throw new ProxyConfigException($"{where}: access log operator %{name}% is not supported; Bowline formats START_TIME, REQ, RESP, PROTOCOL, RESPONSE_CODE, RESPONSE_FLAGS, RESPONSE_CODE_DETAILS, CONNECTION_TERMINATION_DETAILS, BYTES_RECEIVED, BYTES_SENT, DURATION, REQUEST_DURATION, RESPONSE_DURATION, UPSTREAM_HOST, UPSTREAM_CLUSTER(_RAW), UPSTREAM_LOCAL_ADDRESS, UPSTREAM_TRANSPORT_FAILURE_REASON, UPSTREAM_REQUEST_ATTEMPT_COUNT, DOWNSTREAM_(DIRECT_)REMOTE_ADDRESS(_WITHOUT_PORT), DOWNSTREAM_LOCAL_ADDRESS, DOWNSTREAM_LOCAL_PORT, DOWNSTREAM_PEER_URI_SAN, DOWNSTREAM_LOCAL_URI_SAN, REQUESTED_SERVER_NAME, ROUTE_NAME, HOSTNAME"),
        };
        if (argument is not null && name is not ("START_TIME" or "REQ" or "RESP"))
        {
            throw new ProxyConfigException($"{where}: operator %{name}% takes no argument");
        }
        return new Part(null, read, max);
    }

    internal static object? Milliseconds(AccessLogInput stream, long from, long to) =>
        from == 0 || to == 0 || to < from ? null : (long)stream.Time.GetElapsedTime(from, to).TotalMilliseconds;

    private static string? Address(System.Net.IPAddress? address, int port) =>
        address is null ? null : address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address}]:{port}" : $"{address}:{port}";

    /// <summary><c>%REQ(X?Y)%</c>: the header X, else Y; <c>:method</c>, <c>:path</c> (with the query), <c>:authority</c>, <c>:scheme</c> are the pseudo-headers.</summary>
    private static Func<AccessLogInput, object?> Header(string? argument, bool request, string where)
    {
        if (string.IsNullOrEmpty(argument))
        {
            throw new ProxyConfigException($"{where}: %{(request ? "REQ" : "RESP")}()% needs a header name");
        }
        var names = argument.Split('?', 2);
        var readers = names.Select(n => request ? RequestHeader(n.ToLowerInvariant()) : ResponseHeader(n.ToLowerInvariant())).ToArray();
        return s =>
        {
            foreach (var reader in readers)
            {
                if (reader(s) is { Length: > 0 } value)
                {
                    return value;
                }
            }
            return null;
        };
    }

    // A TCP connection has no headers: every REQ and RESP is missing there.
    private static Func<AccessLogInput, string?> RequestHeader(string name) => name switch
    {
        ":method" => s => s.Http?.Request.Method,
        ":path" => s => s.Http is { } http ? http.Request.Path.Value + http.Request.QueryString.Value : null,
        ":authority" => s => s.Http?.Request.Host.Value,
        ":scheme" => s => s.Http?.Request.Scheme,
        _ => s => s.Http?.Request.Headers.TryGetValue(name, out var value) == true ? value.ToString() : null,
    };

    private static Func<AccessLogInput, string?> ResponseHeader(string name) => name switch
    {
        ":status" => s => s.Http?.Response.StatusCode.ToString(CultureInfo.InvariantCulture),
        _ => s => s.Http?.Response.Headers.TryGetValue(name, out var value) == true ? value.ToString() : null,
    };

    /// <summary>
    /// <c>%START_TIME%</c> in Envoy's default form (<c>2026-12-02T17:04:05.123Z</c>), or with a strftime format of
    /// the common specifiers (%Y %m %d %H %M %S %z, Envoy's %3f/%6f/%9f fractions, %s epoch seconds).
    /// </summary>
    private static Func<AccessLogInput, object?> StartTime(string? format, string where)
    {
        if (string.IsNullOrEmpty(format))
        {
            return s => s.Info.StartTime.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);
        }
        var net = new StringBuilder();
        for (var i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 == format.Length)
            {
                net.Append(format[i] is '\'' or '"' or '\\' ? "\\" + format[i] : format[i] is var ch && char.IsLetter(ch) ? $"'{ch}'" : format[i].ToString());
                continue;
            }
            var spec = format[++i];
            if (spec is '3' or '6' or '9' && i + 1 < format.Length && format[i + 1] == 'f')
            {
                // .NET resolves to 100 ns: nine digits are seven and two zeros.
                net.Append(spec == '9' ? "fffffff'00'" : new string('f', spec - '0'));
                i++;
                continue;
            }
            net.Append(spec switch
            {
                'Y' => "yyyy",
                'm' => "MM",
                'd' => "dd",
                'H' => "HH",
                'M' => "mm",
                'S' => "ss",
                // The time is UTC: strftime's %z is +0000.
                'z' => "'+0000'",
                's' => "'\u0001'",
                '%' => "'%'",
                _ => throw new ProxyConfigException($"{where}: %START_TIME({format})%: strftime specifier %{spec} is not supported"),
            });
        }
        var pattern = net.ToString();
        try
        {
            // A pattern .NET cannot format is found now, not on every request.
            _ = DateTime.UnixEpoch.ToString(pattern, CultureInfo.InvariantCulture);
        }
        catch (FormatException)
        {
            throw new ProxyConfigException($"{where}: %START_TIME({format})% is not a usable time format");
        }
        return s =>
        {
            var text = s.Info.StartTime.UtcDateTime.ToString(pattern, CultureInfo.InvariantCulture);
            return text.Contains('\u0001', StringComparison.Ordinal) ? text.Replace("\u0001", s.Info.StartTime.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture), StringComparison.Ordinal) : text;
        };
    }
}

/// <summary>
/// What an access log line is made of: the record of a finished request or TCP connection, the connection it came on,
/// and for HTTP the request and response (null for TCP, whose REQ/RESP/PROTOCOL operators are then missing).
/// </summary>
internal sealed class AccessLogInput(RequestInfo info, Listeners.ConnectionChain? connection, Microsoft.AspNetCore.Http.HttpContext? http, TimeProvider time,
    System.Net.IPEndPoint? local = null, System.Net.IPEndPoint? remote = null)
{
    public static AccessLogInput Of(HttpStream stream) => new(stream.Info, stream.Connection, stream.Context, stream.Time);

    public RequestInfo Info { get; } = info;

    public Listeners.ConnectionChain? Connection { get; } = connection;

    public Microsoft.AspNetCore.Http.HttpContext? Http { get; } = http;

    public TimeProvider Time { get; } = time;

    public System.Net.IPAddress? RemoteAddress => Connection?.Metadata.SourceAddress ?? Http?.Connection.RemoteIpAddress ?? remote?.Address;

    public int RemotePort => Connection?.Metadata.SourcePort ?? Http?.Connection.RemotePort ?? remote?.Port ?? 0;

    public System.Net.IPAddress? LocalAddress => Connection?.Metadata.DestinationAddress ?? Http?.Connection.LocalIpAddress ?? local?.Address;

    public int LocalPort => Connection?.Metadata.DestinationPort ?? Http?.Connection.LocalPort ?? local?.Port ?? 0;
}

[System.Text.Json.Serialization.JsonSerializable(typeof(string))]
internal sealed partial class AccessLogJsonContext : System.Text.Json.Serialization.JsonSerializerContext;
