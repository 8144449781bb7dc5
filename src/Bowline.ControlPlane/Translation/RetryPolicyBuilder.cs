using System.Globalization;
using Bowline.ControlPlane.Config;
using Bowline.ControlPlane.Config.Parsing;
using Envoy.Config.Route.V3;
using Google.Protobuf.WellKnownTypes;

namespace Bowline.ControlPlane.Translation;

/// <summary>Istio's retry policy translation (pilot/pkg/networking/core/route/retry): defaults, status codes, host re-selection.</summary>
internal static class RetryPolicyBuilder
{
    /// <summary>Istio's default conditions when a route gives no retries: failures before any response was started.</summary>
    public const string DefaultRetryOn = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes";

    private const string PreviousHosts = "envoy.retry_host_predicates.previous_hosts";

    private const string PreviousPriorities = "envoy.retry_priorities.previous_priorities";

    /// <summary>Istio's value: after how many attempts the priorities already tried are excluded from the next choice.</summary>
    private const int PreviousPrioritiesUpdateFrequency = 2;

    /// <summary>
    /// The Envoy retry policy for a route: Istio's default when <paramref name="retry"/> is null, none when attempts is
    /// 0. Hosts already tried are avoided, except when the route hashes consistently (a retry must stay on its host).
    /// </summary>
    public static RetryPolicy? Build(HttpRetry? retry, bool consistentHash)
    {
        if (retry is { Attempts: <= 0 })
        {
            return null;
        }
        var policy = new RetryPolicy
        {
            NumRetries = (uint)(retry?.Attempts ?? 2),
            RetryOn = DefaultRetryOn,
            // Istio's value: how many times host selection may be retried to find a host not yet tried.
            HostSelectionRetryMaxAttempts = 5,
        };
        var avoidPreviousHosts = retry?.IgnorePreviousHosts ?? !consistentHash;
        if (avoidPreviousHosts)
        {
            policy.RetryHostPredicate.Add(new RetryPolicy.Types.RetryHostPredicate
            {
                Name = PreviousHosts,
                TypedConfig = Any.Pack(new Envoy.Extensions.Retry.Host.PreviousHosts.V3.PreviousHostsPredicate()),
            });
        }
        if (retry?.RetryOn is { Length: > 0 } retryOn)
        {
            var conditions = new List<string>();
            foreach (var part in retryOn.Split(',').Select(p => p.Trim()).Where(p => p.Length > 0))
            {
                // Istio reads a number that is a known status code as a retriable status code, anything else as a condition.
                if (int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var code) && IstioRules.KnownStatusCodes.Contains(code))
                {
                    policy.RetriableStatusCodes.Add((uint)code);
                }
                else
                {
                    conditions.Add(part);
                }
            }
            policy.RetryOn = string.Join(",", conditions);
            if (policy.RetriableStatusCodes.Count > 0 && !policy.RetryOn.Contains("retriable-status-codes", StringComparison.Ordinal))
            {
                policy.RetryOn = policy.RetryOn.Length == 0 ? "retriable-status-codes" : policy.RetryOn + ",retriable-status-codes";
            }
        }
        if (retry is { RetryRemoteLocalities: true })
        {
            // Istio's retryRemoteLocalities: a retry prefers a priority (with failover, a farther locality) not yet tried.
            policy.RetryPriority = new RetryPolicy.Types.RetryPriority
            {
                Name = PreviousPriorities,
                TypedConfig = Any.Pack(new Envoy.Extensions.Retry.Priority.PreviousPriorities.V3.PreviousPrioritiesConfig { UpdateFrequency = PreviousPrioritiesUpdateFrequency }),
            };
        }
        if (retry?.PerTryTimeout is { } perTry)
        {
            policy.PerTryTimeout = Duration.FromTimeSpan(perTry);
        }
        if (retry?.Backoff is { } backoff)
        {
            policy.RetryBackOff = new RetryPolicy.Types.RetryBackOff { BaseInterval = Duration.FromTimeSpan(backoff) };
        }
        return policy;
    }
}
