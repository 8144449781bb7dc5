namespace Bowline.Proxy.Xds;

/// <summary>
/// Watches one ADS stream for progress. The stream owes the proxy something while a request is queued or being
/// written, or while a subscription (the first request of a type, or changed names) has had no response of its type;
/// it makes progress whenever any response arrives. Owing for the whole timeout with no response at all is a stall,
/// reported once through <c>onStall</c> on a timer thread. Time spent applying a response locally is not counted: a
/// slow compile is not the stream's fault. An idle stream (everything written and answered) never stalls.
/// Thread-safe: the reading loop, the writing loop and the timer all call in.
/// </summary>
internal sealed class StreamProgress(TimeProvider time, TimeSpan timeout, Action onStall) : IDisposable
{
    private readonly Lock _gate = new();
    private readonly HashSet<string> _awaiting = new(StringComparer.Ordinal);
    private ITimer? _timer;
    private int _unwritten;
    private int _localWork;
    private long _since;
    private bool _stalled;
    private bool _disposed;

    public bool Stalled
    {
        get
        {
            lock (_gate)
            {
                return _stalled;
            }
        }
    }

    public TimeSpan Timeout => timeout;

    /// <summary>A request was queued for writing; <paramref name="expectsResponse"/> for a subscription change (an ACK or NACK expects none).</summary>
    public void Queued(string typeUrl, bool expectsResponse)
    {
        lock (_gate)
        {
            var wasOwed = Owed;
            _unwritten++;
            if (expectsResponse)
            {
                _awaiting.Add(typeUrl);
            }
            if (!wasOwed)
            {
                _since = time.GetTimestamp();
                Arm(timeout);
            }
        }
    }

    /// <summary>A queued request is on the wire.</summary>
    public void Written()
    {
        lock (_gate)
        {
            _unwritten--;
        }
    }

    /// <summary>A response of <paramref name="typeUrl"/> arrived: progress, and that type's subscription is answered.</summary>
    public void Received(string typeUrl)
    {
        lock (_gate)
        {
            _awaiting.Remove(typeUrl);
            _since = time.GetTimestamp();
        }
    }

    /// <summary>Brackets the local apply of a response; the clock restarts when it ends.</summary>
    public void BeginLocalWork()
    {
        lock (_gate)
        {
            _localWork++;
        }
    }

    public void EndLocalWork()
    {
        lock (_gate)
        {
            _localWork--;
            _since = time.GetTimestamp();
            if (Owed)
            {
                Arm(timeout);
            }
        }
    }

    /// <summary>What the stream owes, for the log line: unwritten requests and unanswered subscription types.</summary>
    public string Describe()
    {
        lock (_gate)
        {
            var types = _awaiting.Count == 0 ? "none" : string.Join(", ", _awaiting.Select(Bowline.Xds.TypeUrls.ShortName).Order(StringComparer.Ordinal));
            return $"{_unwritten} request(s) not yet written, unanswered subscriptions: {types}";
        }
    }

    public void Dispose()
    {
        lock (_gate)
        {
            _disposed = true;
            _timer?.Dispose();
        }
    }

    private bool Owed => _unwritten > 0 || _awaiting.Count > 0;

    private void OnTimer()
    {
        lock (_gate)
        {
            // Idle, or applying: the next Queued or EndLocalWork arms the timer again.
            if (_disposed || _stalled || !Owed || _localWork > 0)
            {
                return;
            }
            var waited = time.GetElapsedTime(_since);
            if (waited < timeout)
            {
                Arm(timeout - waited);
                return;
            }
            _stalled = true;
        }
        onStall();
    }

    private void Arm(TimeSpan due)
    {
        if (_disposed)
        {
            return;
        }
        if (_timer is null)
        {
            _timer = time.CreateTimer(static state => ((StreamProgress)state!).OnTimer(), this, due, System.Threading.Timeout.InfiniteTimeSpan);
        }
        else
        {
            _timer.Change(due, System.Threading.Timeout.InfiniteTimeSpan);
        }
    }
}
