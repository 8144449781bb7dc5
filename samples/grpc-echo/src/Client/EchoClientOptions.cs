using System.Globalization;
using System.Net;

namespace Bowline.Samples.GrpcEcho.Client;

/// <summary>The client command's arguments, validated.</summary>
/// <param name="Target">host:port the calls are addressed to; becomes the :authority.</param>
/// <param name="Via">Where the TCP connection goes instead of <paramref name="Target"/>, if anywhere.</param>
/// <param name="Count">Calls to make, one after another.</param>
/// <param name="StreamMessages">When set, each call is an EchoStream of this many messages.</param>
/// <param name="Deadline">Per-call deadline.</param>
internal sealed record EchoClientOptions(
    string Target,
    DnsEndPoint? Via,
    int Count,
    int? StreamMessages,
    TimeSpan Deadline)
{
    public static EchoClientOptions? Parse(IReadOnlyList<string> args, out string error)
    {
        string? target = null;
        DnsEndPoint? via = null;
        int? count = null;
        int? stream = null;
        var deadlineSeconds = 30;
        error = "";

        for (var i = 0; i < args.Count; i++)
        {
            var name = args[i];
            if (i + 1 >= args.Count)
            {
                error = $"{name} needs a value.";
                return null;
            }

            var value = args[++i];
            switch (name)
            {
                case "--target":
                    if (!TryParseHostPort(value, out _))
                    {
                        error = $"--target '{value}' is not host:port (for example grpc-echo:50051).";
                        return null;
                    }

                    target = value;
                    break;
                case "--via":
                    if (!TryParseHostPort(value, out via))
                    {
                        error = $"--via '{value}' is not host:port (for example 127.0.0.1:15001).";
                        return null;
                    }

                    break;
                case "--count":
                    if (!TryParsePositive(value, out var c))
                    {
                        error = $"--count '{value}' is not a positive integer.";
                        return null;
                    }

                    count = c;
                    break;
                case "--stream":
                    if (!TryParsePositive(value, out var s))
                    {
                        error = $"--stream '{value}' is not a positive integer.";
                        return null;
                    }

                    stream = s;
                    break;
                case "--deadline":
                    if (!TryParsePositive(value, out deadlineSeconds))
                    {
                        error = $"--deadline '{value}' is not a positive number of seconds.";
                        return null;
                    }

                    break;
                default:
                    error = $"unknown option '{name}'.";
                    return null;
            }
        }

        if (target is null)
        {
            error = "--target is required.";
            return null;
        }

        // A stream run defaults to one stream; a unary run to a handful of calls.
        return new EchoClientOptions(target, via, count ?? (stream is null ? 10 : 1), stream, TimeSpan.FromSeconds(deadlineSeconds));
    }

    private static bool TryParsePositive(string value, out int result) =>
        int.TryParse(value, NumberStyles.None, CultureInfo.InvariantCulture, out result) && result > 0;

    private static bool TryParseHostPort(string value, out DnsEndPoint? endPoint)
    {
        endPoint = null;
        var colon = value.LastIndexOf(':');
        if (colon <= 0)
        {
            return false;
        }

        // "[::1]:15001" names an IPv6 address; the brackets are URI syntax, not part of the host.
        var host = value[..colon].Trim('[', ']');
        if (host.Length == 0 ||
            !int.TryParse(value.AsSpan(colon + 1), NumberStyles.None, CultureInfo.InvariantCulture, out var port) ||
            port is < 1 or > 65535)
        {
            return false;
        }

        endPoint = new DnsEndPoint(host, port);
        return true;
    }
}
