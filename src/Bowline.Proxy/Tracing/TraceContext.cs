using System.Diagnostics;
using Microsoft.AspNetCore.Http;

namespace Bowline.Proxy.Tracing;

/// <summary>Which header family a trace context arrived in; the proxy answers in the same family (and always in W3C).</summary>
internal enum TraceHeaders
{
    W3C,
    B3Multi,
    B3Single,
}

/// <summary>
/// A trace context read from request headers: W3C <c>traceparent</c>/<c>tracestate</c> first, then B3's single
/// <c>b3</c> header, then B3's multi headers (<c>x-b3-traceid</c>, <c>x-b3-spanid</c>, <c>x-b3-sampled</c>,
/// <c>x-b3-flags</c>). <see cref="Sampled"/> is null when the sender made no sampling decision (B3 allows that).
/// A malformed header is treated as absent, as the W3C spec asks: a new trace starts.
/// </summary>
internal readonly record struct TraceContext(ActivityTraceId TraceId, ActivitySpanId SpanId, bool? Sampled, string? TraceState, TraceHeaders Format, bool ShortTraceId)
{
    public const string TraceParent = "traceparent";
    public const string TraceStateHeader = "tracestate";
    public const string B3 = "b3";
    public const string B3TraceId = "x-b3-traceid";
    public const string B3SpanId = "x-b3-spanid";
    public const string B3ParentSpanId = "x-b3-parentspanid";
    public const string B3Sampled = "x-b3-sampled";
    public const string B3Flags = "x-b3-flags";

    /// <summary>The incoming context, or null when the request carries none (or only a sampling flag, see <paramref name="samplingOnly"/>).</summary>
    public static TraceContext? Extract(IHeaderDictionary headers, out bool? samplingOnly)
    {
        samplingOnly = null;
        if (headers.TryGetValue(TraceParent, out var parent) && parent.Count == 1
            && ActivityContext.TryParse(parent[0], headers.TryGetValue(TraceStateHeader, out var state) ? state.ToString() : null, isRemote: true, out var w3c))
        {
            return new TraceContext(w3c.TraceId, w3c.SpanId, (w3c.TraceFlags & ActivityTraceFlags.Recorded) != 0, w3c.TraceState, TraceHeaders.W3C, false);
        }
        if (headers.TryGetValue(B3, out var single) && single.Count == 1 && single[0] is { Length: > 0 } b3)
        {
            return ParseB3Single(b3, out samplingOnly);
        }
        if (headers.TryGetValue(B3TraceId, out var traceId) && headers.TryGetValue(B3SpanId, out var spanId)
            && TryTraceId(traceId.ToString(), out var id, out var shortId) && TrySpanId(spanId.ToString(), out var span))
        {
            bool? sampled = headers.TryGetValue(B3Flags, out var flags) && flags.ToString() == "1" ? true
                : headers.TryGetValue(B3Sampled, out var s) ? SampledFlag(s.ToString()) : null;
            return new TraceContext(id, span, sampled, null, TraceHeaders.B3Multi, shortId);
        }
        if (headers.TryGetValue(B3Sampled, out var onlySampled))
        {
            samplingOnly = SampledFlag(onlySampled.ToString());
        }
        return null;
    }

    /// <summary>B3 single: <c>{traceid}-{spanid}[-{sampling}[-{parentspanid}]]</c>, or a lone sampling state (<c>0</c>, <c>1</c>, <c>d</c>).</summary>
    private static TraceContext? ParseB3Single(string value, out bool? samplingOnly)
    {
        samplingOnly = null;
        var parts = value.Split('-');
        if (parts.Length == 1)
        {
            samplingOnly = SampledFlag(parts[0]);
            return null;
        }
        if (parts.Length > 4 || !TryTraceId(parts[0], out var id, out var shortId) || !TrySpanId(parts[1], out var span))
        {
            return null;
        }
        bool? sampled = parts.Length >= 3 ? SampledFlag(parts[2]) : null;
        if (parts.Length >= 3 && sampled is null)
        {
            return null;
        }
        return new TraceContext(id, span, sampled, null, TraceHeaders.B3Single, shortId);
    }

    private static bool? SampledFlag(string value) => value switch
    {
        "1" or "d" or "true" => true,
        "0" or "false" => false,
        _ => null,
    };

    /// <summary>A B3 trace id: 32 hex digits, or 16 (a 64-bit id, left-padded with zeros as B3 says).</summary>
    private static bool TryTraceId(string value, out ActivityTraceId id, out bool shortId)
    {
        id = default;
        shortId = value.Length == 16;
        if ((value.Length != 32 && !shortId) || !IsLowerHex(value) || IsAllZeros(value))
        {
            return false;
        }
        id = ActivityTraceId.CreateFromString(shortId ? string.Concat("0000000000000000", value) : value);
        return true;
    }

    private static bool TrySpanId(string value, out ActivitySpanId id)
    {
        id = default;
        if (value.Length != 16 || !IsLowerHex(value) || IsAllZeros(value))
        {
            return false;
        }
        id = ActivitySpanId.CreateFromString(value);
        return true;
    }

    private static bool IsLowerHex(string value)
    {
        foreach (var c in value)
        {
            if (!char.IsAsciiDigit(c) && c is not (>= 'a' and <= 'f'))
            {
                return false;
            }
        }
        return true;
    }

    private static bool IsAllZeros(string value) => value.AsSpan().IndexOfAnyExcept('0') < 0;

    /// <summary>
    /// Writes the context the next hop continues from: <paramref name="span"/> is this proxy's span (the next hop's
    /// parent). W3C always; B3 too when the request arrived with B3, in the form it arrived in.
    /// </summary>
    public static void Inject(IHeaderDictionary headers, ActivityTraceId traceId, ActivitySpanId span, bool sampled, TraceContext? incoming)
    {
        var trace = traceId.ToHexString();
        var spanHex = span.ToHexString();
        headers[TraceParent] = string.Concat("00-", trace, "-", spanHex, sampled ? "-01" : "-00");
        if (incoming is not { } from)
        {
            return;
        }
        var b3Trace = from.ShortTraceId ? trace[16..] : trace;
        switch (from.Format)
        {
            case TraceHeaders.B3Multi:
                headers[B3TraceId] = b3Trace;
                headers[B3SpanId] = spanHex;
                headers[B3ParentSpanId] = from.SpanId.ToHexString();
                headers[B3Sampled] = sampled ? "1" : "0";
                headers.Remove(B3Flags);
                break;
            case TraceHeaders.B3Single:
                headers[B3] = string.Concat(b3Trace, "-", spanHex, sampled ? "-1-" : "-0-", from.SpanId.ToHexString());
                break;
        }
    }
}
