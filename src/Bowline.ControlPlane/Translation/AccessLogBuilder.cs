using Bowline.ControlPlane.Config;
using Envoy.Config.Accesslog.V3;
using Envoy.Config.Core.V3;
using Envoy.Extensions.AccessLoggers.File.V3;
using Envoy.Extensions.Filters.Network.HttpConnectionManager.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>
/// Istio's mesh-wide access log (pilot's buildAccessLog from meshConfig): an <c>envoy.access_loggers.file</c> entry on
/// an HTTP connection manager, in Istio's default text format (EnvoyTextLogFormat) or its JSON keys
/// (EnvoyJSONLogFormatIstio), or the mesh's own <c>accessLogFormat</c>.
/// </summary>
internal static class AccessLogBuilder
{
    public const string FileLogger = "envoy.access_loggers.file";

    /// <summary>Istio's default text format, byte for byte.</summary>
    public const string IstioTextFormat = "[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" %RESPONSE_CODE% %RESPONSE_FLAGS% "
        + "%RESPONSE_CODE_DETAILS% %CONNECTION_TERMINATION_DETAILS% \"%UPSTREAM_TRANSPORT_FAILURE_REASON%\" %BYTES_RECEIVED% %BYTES_SENT% "
        + "%DURATION% %RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)% \"%REQ(X-FORWARDED-FOR)%\" \"%REQ(USER-AGENT)%\" \"%REQ(X-REQUEST-ID)%\" \"%REQ(:AUTHORITY)%\" \"%UPSTREAM_HOST%\" "
        + "%UPSTREAM_CLUSTER_RAW% %UPSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_LOCAL_ADDRESS% %DOWNSTREAM_REMOTE_ADDRESS% %REQUESTED_SERVER_NAME% %ROUTE_NAME%\n";

    /// <summary>Istio's default JSON keys and their operators.</summary>
    private static readonly (string Key, string Operator)[] IstioJsonFields =
    [
        ("start_time", "%START_TIME%"), ("route_name", "%ROUTE_NAME%"), ("method", "%REQ(:METHOD)%"), ("path", "%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)%"),
        ("protocol", "%PROTOCOL%"), ("response_code", "%RESPONSE_CODE%"), ("response_flags", "%RESPONSE_FLAGS%"), ("response_code_details", "%RESPONSE_CODE_DETAILS%"),
        ("connection_termination_details", "%CONNECTION_TERMINATION_DETAILS%"), ("bytes_received", "%BYTES_RECEIVED%"), ("bytes_sent", "%BYTES_SENT%"),
        ("duration", "%DURATION%"), ("upstream_service_time", "%RESP(X-ENVOY-UPSTREAM-SERVICE-TIME)%"), ("x_forwarded_for", "%REQ(X-FORWARDED-FOR)%"),
        ("user_agent", "%REQ(USER-AGENT)%"), ("request_id", "%REQ(X-REQUEST-ID)%"), ("authority", "%REQ(:AUTHORITY)%"), ("upstream_host", "%UPSTREAM_HOST%"),
        ("upstream_cluster", "%UPSTREAM_CLUSTER_RAW%"), ("upstream_local_address", "%UPSTREAM_LOCAL_ADDRESS%"), ("downstream_local_address", "%DOWNSTREAM_LOCAL_ADDRESS%"),
        ("downstream_remote_address", "%DOWNSTREAM_REMOTE_ADDRESS%"), ("requested_server_name", "%REQUESTED_SERVER_NAME%"),
        ("upstream_transport_failure_reason", "%UPSTREAM_TRANSPORT_FAILURE_REASON%"),
    ];

    public static void Apply(HttpConnectionManager hcm, MeshTelemetry telemetry)
    {
        if (telemetry.AccessLogFile is not { } path)
        {
            return;
        }
        hcm.AccessLog.Add(new AccessLog { Name = FileLogger, TypedConfig = Any.Pack(new FileAccessLog { Path = path, LogFormat = Format(telemetry) }) });
    }

    private static SubstitutionFormatString Format(MeshTelemetry telemetry)
    {
        if (telemetry.Encoding == AccessLogEncoding.Text)
        {
            // Istio appends the newline a custom text format lacks.
            var text = telemetry.Format is { } custom ? (custom.EndsWith('\n') ? custom : custom + "\n") : IstioTextFormat;
            return new SubstitutionFormatString { TextFormatSource = new DataSource { InlineString = text } };
        }
        var json = new Struct();
        if (telemetry.Format is { } format)
        {
            // Validated when the control plane starts: a JSON object of string values.
            foreach (var property in System.Text.Json.JsonDocument.Parse(format).RootElement.EnumerateObject())
            {
                json.Fields[property.Name] = Value.ForString(property.Value.GetString());
            }
        }
        else
        {
            foreach (var (key, op) in IstioJsonFields)
            {
                json.Fields[key] = Value.ForString(op);
            }
        }
        return new SubstitutionFormatString { JsonFormat = json };
    }
}
