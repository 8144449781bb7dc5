using System.Diagnostics.Metrics;

namespace Bowline.Ca.Tests.Infrastructure;

/// <summary>Sums one meter's counters by name, and by name and <c>reason</c> tag (<c>name/reason</c>).</summary>
internal sealed class MeterRecorder : IDisposable
{
    private readonly MeterListener _listener = new();
    private readonly Dictionary<string, long> _sums = [];

    public MeterRecorder(Meter meter)
    {
        _listener.InstrumentPublished = (instrument, listener) =>
        {
            if (instrument.Meter == meter)
            {
                listener.EnableMeasurementEvents(instrument);
            }
        };
        _listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            lock (_sums)
            {
                _sums[instrument.Name] = _sums.GetValueOrDefault(instrument.Name) + value;
                foreach (var tag in tags)
                {
                    if (tag.Key == "reason")
                    {
                        var key = $"{instrument.Name}/{tag.Value}";
                        _sums[key] = _sums.GetValueOrDefault(key) + value;
                    }
                }
            }
        });
        _listener.Start();
    }

    public long this[string name]
    {
        get
        {
            lock (_sums)
            {
                return _sums.GetValueOrDefault(name);
            }
        }
    }

    public void Dispose() => _listener.Dispose();
}
