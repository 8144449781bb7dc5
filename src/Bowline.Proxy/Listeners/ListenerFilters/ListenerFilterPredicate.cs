using Bowline.Proxy.Configuration;
using Envoy.Config.Listener.V3;

namespace Bowline.Proxy.Listeners.ListenerFilters;

/// <summary>
/// Envoy's <c>ListenerFilterChainMatchPredicate</c>, a listener filter's <c>filter_disabled</c>: the connections the
/// filter skips, by destination port (<c>destination_port_range</c> under <c>or_match</c>, <c>and_match</c>,
/// <c>not_match</c>, <c>any_match</c>). Istio turns the inspectors off this way on ports that do not need them, so a
/// server-first protocol on a TCP port is not kept waiting for a first byte that never comes.
/// </summary>
internal sealed class ListenerFilterPredicate
{
    /// <summary>No <c>filter_disabled</c>: the filter runs on every connection.</summary>
    public static readonly ListenerFilterPredicate Never = new(_ => false);

    private readonly Func<int, bool> _matches;

    private ListenerFilterPredicate(Func<int, bool> matches) => _matches = matches;

    /// <summary>Whether the filter is disabled for a connection to <paramref name="destinationPort"/>.</summary>
    public bool Matches(int destinationPort) => _matches(destinationPort);

    public static ListenerFilterPredicate Compile(ListenerFilterChainMatchPredicate? predicate, string where) =>
        predicate is null ? Never : new ListenerFilterPredicate(Build(predicate, where));

    private static Func<int, bool> Build(ListenerFilterChainMatchPredicate predicate, string where)
    {
        switch (predicate.RuleCase)
        {
            case ListenerFilterChainMatchPredicate.RuleOneofCase.AnyMatch:
                return predicate.AnyMatch ? _ => true : throw new ProxyConfigException($"{where}: any_match must be true (Envoy's rule)");
            case ListenerFilterChainMatchPredicate.RuleOneofCase.NotMatch:
                var inner = Build(predicate.NotMatch, where + ".not_match");
                return port => !inner(port);
            case ListenerFilterChainMatchPredicate.RuleOneofCase.OrMatch:
                var any = Rules(predicate.OrMatch, where + ".or_match");
                return port => any.Any(rule => rule(port));
            case ListenerFilterChainMatchPredicate.RuleOneofCase.AndMatch:
                var all = Rules(predicate.AndMatch, where + ".and_match");
                return port => all.All(rule => rule(port));
            case ListenerFilterChainMatchPredicate.RuleOneofCase.DestinationPortRange:
                var (start, end) = (predicate.DestinationPortRange.Start, predicate.DestinationPortRange.End);
                return start < end ? port => port >= start && port < end : throw new ProxyConfigException($"{where}: destination_port_range [{start}, {end}) is empty");
            default:
                throw new ProxyConfigException($"{where}: {predicate.RuleCase} is not supported; use destination_port_range, or_match, and_match, not_match or any_match");
        }
    }

    private static Func<int, bool>[] Rules(ListenerFilterChainMatchPredicate.Types.MatchSet set, string where) =>
        set.Rules.Count >= 2
            ? [.. set.Rules.Select((rule, i) => Build(rule, $"{where}.rules[{i}]"))]
            : throw new ProxyConfigException($"{where}: a match set needs at least two rules (Envoy's rule)");
}
