using System.Globalization;

namespace Bowline.EndToEnd.Tests.Infrastructure;

/// <summary>One scrape of a Prometheus text endpoint, parsed into samples (name, labels, value) for assertions.</summary>
internal sealed class PrometheusScrape
{
    private PrometheusScrape(string text, List<(string Name, Dictionary<string, string> Labels, double Value)> samples)
    {
        Text = text;
        Samples = samples;
    }

    public string Text { get; }

    public IReadOnlyList<(string Name, Dictionary<string, string> Labels, double Value)> Samples { get; }

    public static async Task<PrometheusScrape> GetAsync(Uri url)
    {
        using var http = new HttpClient(new SocketsHttpHandler { UseProxy = false }) { Timeout = Timeouts.Short };
        var text = await http.GetStringAsync(url).Within(Timeouts.Short);
        return Parse(text);
    }

    public static PrometheusScrape Parse(string text)
    {
        var samples = new List<(string, Dictionary<string, string>, double)>();
        foreach (var line in text.Split('\n'))
        {
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            var brace = line.IndexOf('{', StringComparison.Ordinal);
            string name;
            string rest;
            if (brace >= 0)
            {
                name = line[..brace];
                var i = brace + 1;
                while (line[i] != '}')
                {
                    var eq = line.IndexOf('=', i);
                    var key = line[i..eq];
                    var value = new System.Text.StringBuilder();
                    var j = eq + 2;
                    for (; line[j] != '"'; j++)
                    {
                        if (line[j] == '\\')
                        {
                            j++;
                            value.Append(line[j] == 'n' ? '\n' : line[j]);
                        }
                        else
                        {
                            value.Append(line[j]);
                        }
                    }
                    labels[key] = value.ToString();
                    i = j + 1;
                    if (line[i] == ',')
                    {
                        i++;
                    }
                }
                rest = line[(i + 1)..].Trim();
            }
            else
            {
                var space = line.IndexOf(' ', StringComparison.Ordinal);
                name = line[..space];
                rest = line[(space + 1)..].Trim();
            }
            samples.Add((name, labels, double.Parse(rest.Split(' ')[0], CultureInfo.InvariantCulture)));
        }
        return new PrometheusScrape(text, samples);
    }

    /// <summary>The sum of <paramref name="name"/> over the series whose labels include every pair of <paramref name="match"/>.</summary>
    public double Sum(string name, params (string Label, string Value)[] match) =>
        Samples.Where(s => s.Name == name && match.All(m => s.Labels.TryGetValue(m.Label, out var v) && v == m.Value)).Sum(s => s.Value);

    /// <summary>The series of <paramref name="name"/> matching <paramref name="match"/>.</summary>
    public IEnumerable<Dictionary<string, string>> Series(string name, params (string Label, string Value)[] match) =>
        Samples.Where(s => s.Name == name && match.All(m => s.Labels.TryGetValue(m.Label, out var v) && v == m.Value)).Select(s => s.Labels);
}
