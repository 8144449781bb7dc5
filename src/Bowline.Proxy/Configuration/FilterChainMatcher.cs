using System.Net;
using Bowline.Proxy.Listeners;
using Envoy.Config.Listener.V3;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// One filter chain's <c>filter_chain_match</c>, compiled. Each criterion scores a connection: -1 when the chain
/// names the criterion and the connection does not meet it, 0 when the chain leaves it open, higher for more specific
/// matches (a longer prefix, an exact server name over a wildcard).
/// </summary>
internal sealed class FilterChainCriteria
{
    private readonly int? _destinationPort;
    private readonly CidrRange[] _destinationRanges;
    private readonly string[] _serverNames;
    private readonly string? _transportProtocol;
    private readonly string[] _applicationProtocols;
    private readonly CidrRange[] _directSourceRanges;
    private readonly FilterChainMatch.Types.ConnectionSourceType _sourceType;
    private readonly CidrRange[] _sourceRanges;
    private readonly uint[] _sourcePorts;

    public FilterChainCriteria(FilterChainMatch? match, string where)
    {
        Source = match ?? new FilterChainMatch();
        XdsFields.Check(Source, where + " filter_chain_match", "destination_port", "prefix_ranges", "server_names", "transport_protocol", "application_protocols",
            "direct_source_prefix_ranges", "source_type", "source_prefix_ranges", "source_ports");
        _destinationPort = Source.DestinationPort is { } port ? (int)port : null;
        _destinationRanges = [.. Source.PrefixRanges.Select(r => CidrRange.From(r, where + " prefix_ranges"))];
        _serverNames = [.. Source.ServerNames.Select(n => n.ToLowerInvariant())];
        foreach (var name in _serverNames)
        {
            if (name.Length == 0 || (name.Contains('*', StringComparison.Ordinal) && !(name.StartsWith("*.", StringComparison.Ordinal) && name.LastIndexOf('*') == 0)))
            {
                throw new ProxyConfigException($"{where}: server_names entry '{name}' must be a host name or a wildcard of the form *.example.com");
            }
        }
        _transportProtocol = Source.TransportProtocol.Length > 0 ? Source.TransportProtocol : null;
        _applicationProtocols = [.. Source.ApplicationProtocols];
        _directSourceRanges = [.. Source.DirectSourcePrefixRanges.Select(r => CidrRange.From(r, where + " direct_source_prefix_ranges"))];
        _sourceType = Source.SourceType;
        _sourceRanges = [.. Source.SourcePrefixRanges.Select(r => CidrRange.From(r, where + " source_prefix_ranges"))];
        _sourcePorts = [.. Source.SourcePorts];
    }

    public FilterChainMatch Source { get; }

    /// <summary>Whether any chain criterion needs the TLS inspector's findings (SNI, transport protocol tls, ALPN).</summary>
    public bool NeedsTlsInspection => _serverNames.Length > 0 || _transportProtocol == ConnectionMetadata.Tls || _applicationProtocols.Length > 0;

    /// <summary>Whether a criterion needs the HTTP inspector (plaintext application protocols).</summary>
    public bool NeedsHttpInspection => _applicationProtocols.Length > 0;

    /// <summary>The criteria in Envoy's order of precedence.</summary>
    public const int Levels = 9;

    public int Score(int level, ConnectionMetadata connection) => level switch
    {
        0 => _destinationPort is { } port ? (port == connection.DestinationPort ? 1 : -1) : 0,
        1 => Longest(_destinationRanges, connection.DestinationAddress),
        2 => ServerNameScore(connection.ServerName),
        3 => _transportProtocol is { } transport ? (transport == connection.TransportProtocol ? 1 : -1) : 0,
        4 => _applicationProtocols.Length == 0 ? 0 : (_applicationProtocols.Any(p => connection.ApplicationProtocols.Contains(p)) ? 1 : -1),
        5 => Longest(_directSourceRanges, connection.SourceAddress),
        6 => SourceTypeScore(connection),
        7 => Longest(_sourceRanges, connection.SourceAddress),
        8 => _sourcePorts.Length == 0 ? 0 : (_sourcePorts.Contains((uint)connection.SourcePort) ? 1 : -1),
        _ => throw new ArgumentOutOfRangeException(nameof(level)),
    };

    /// <summary>0 when open, -1 when no range holds the address, else 1 + the longest matching prefix.</summary>
    private static int Longest(CidrRange[] ranges, IPAddress address)
    {
        if (ranges.Length == 0)
        {
            return 0;
        }
        var best = -1;
        foreach (var range in ranges)
        {
            if (range.Length + 1 > best && range.Contains(address))
            {
                best = range.Length + 1;
            }
        }
        return best;
    }

    /// <summary>Envoy: an exact server name beats the longest wildcard suffix, which beats an open chain.</summary>
    private int ServerNameScore(string? serverName)
    {
        if (_serverNames.Length == 0)
        {
            return 0;
        }
        if (serverName is null)
        {
            return -1;
        }
        var best = -1;
        foreach (var name in _serverNames)
        {
            if (name == serverName)
            {
                return int.MaxValue;
            }
            if (name[0] == '*' && serverName.EndsWith(name.AsSpan(1), StringComparison.Ordinal) && serverName.Length > name.Length - 1)
            {
                best = Math.Max(best, name.Length);
            }
        }
        return best;
    }

    private int SourceTypeScore(ConnectionMetadata connection)
    {
        if (_sourceType == FilterChainMatch.Types.ConnectionSourceType.Any)
        {
            return 0;
        }
        var local = IPAddress.IsLoopback(connection.SourceAddress) || connection.SourceAddress.Equals(connection.DestinationAddress);
        return (_sourceType == FilterChainMatch.Types.ConnectionSourceType.SameIpOrLoopback) == local ? 1 : -1;
    }
}

/// <summary>
/// Envoy's filter-chain selection: criteria are applied in a fixed order (destination port, destination IP, server
/// name, transport protocol, application protocols, direct source IP, source type, source IP, source port); at each
/// level only the chains with the most specific match stay, and a chain that leaves the criterion open matches only
/// when no chain names a matching value. Runs once per connection, over the handful of chains a listener has.
/// </summary>
internal sealed class FilterChainMatcher<T>
    where T : class
{
    private readonly (FilterChainCriteria Criteria, T Chain)[] _chains;
    private readonly T? _default;

    public FilterChainMatcher(IReadOnlyList<(FilterChainCriteria Criteria, T Chain)> chains, T? defaultChain, string where)
    {
        for (var i = 0; i < chains.Count; i++)
        {
            for (var j = 0; j < i; j++)
            {
                if (chains[i].Criteria.Source.Equals(chains[j].Criteria.Source))
                {
                    throw new ProxyConfigException($"{where}: two filter chains have the same filter_chain_match ({chains[i].Criteria.Source}); a connection could not choose between them");
                }
            }
        }
        _chains = [.. chains];
        _default = defaultChain;
        NeedsTlsInspection = chains.Any(c => c.Criteria.NeedsTlsInspection);
        NeedsHttpInspection = chains.Any(c => c.Criteria.NeedsHttpInspection);
    }

    public bool NeedsTlsInspection { get; }

    public bool NeedsHttpInspection { get; }

    public IEnumerable<T> All => _chains.Select(c => c.Chain).Append(_default).OfType<T>();

    /// <summary>The chain for <paramref name="connection"/>, the default chain when none matches, or null.</summary>
    public T? Match(ConnectionMetadata connection)
    {
        if (_chains.Length == 0)
        {
            return _default;
        }
        Span<bool> alive = _chains.Length <= 256 ? stackalloc bool[_chains.Length] : new bool[_chains.Length];
        alive.Fill(true);
        for (var level = 0; level < FilterChainCriteria.Levels; level++)
        {
            var best = -1;
            for (var i = 0; i < _chains.Length; i++)
            {
                if (alive[i])
                {
                    best = Math.Max(best, _chains[i].Criteria.Score(level, connection));
                }
            }
            if (best < 0)
            {
                return _default;
            }
            for (var i = 0; i < _chains.Length; i++)
            {
                alive[i] = alive[i] && _chains[i].Criteria.Score(level, connection) == best;
            }
        }
        var index = alive.IndexOf(true);
        return index < 0 ? _default : _chains[index].Chain;
    }
}
