using System.Security.Cryptography;
using Microsoft.Extensions.Logging;

namespace Bowline.ControlPlane.Config;

/// <summary>
/// The embedded default config store: every <c>*.yaml</c>/<c>*.yml</c> file directly in the watched directories.
/// Files are re-read when they change (debounced), and each file's last good resources survive a bad edit: a YAML
/// syntax error keeps the whole file's previous resources, an invalid resource keeps that resource's previous version.
/// </summary>
/// <remarks>Thread-safety: <see cref="Reload"/> is called from one loop at a time; the result is an immutable <see cref="MeshConfig"/>.</remarks>
internal sealed partial class DirectoryConfigSource : IDisposable
{
    private readonly IReadOnlyList<string> _directories;
    private readonly ILogger _logger;
    private readonly Dictionary<string, FileState> _files = new(StringComparer.Ordinal);
    private readonly List<FileSystemWatcher> _watchers = [];
    private long _generation;

    public DirectoryConfigSource(IReadOnlyList<string> directories, ILogger<DirectoryConfigSource> logger)
    {
        _directories = directories.Select(Path.GetFullPath).ToList();
        _logger = logger;
    }

    /// <summary>Raised (on a watcher thread) whenever a file in a watched directory may have changed.</summary>
    public event Action? Changed;

    /// <summary>Every diagnostic of the current files, for the API and <c>bowline analyze</c>.</summary>
    public IReadOnlyList<ConfigDiagnostic> Diagnostics { get; private set; } = [];

    public void StartWatching()
    {
        foreach (var directory in _directories)
        {
            Directory.CreateDirectory(directory);
            var watcher = new FileSystemWatcher(directory) { IncludeSubdirectories = false, NotifyFilter = NotifyFilters.FileName | NotifyFilters.LastWrite | NotifyFilters.Size };
            watcher.Changed += (_, _) => Changed?.Invoke();
            watcher.Created += (_, _) => Changed?.Invoke();
            watcher.Deleted += (_, _) => Changed?.Invoke();
            watcher.Renamed += (_, _) => Changed?.Invoke();
            watcher.EnableRaisingEvents = true;
            _watchers.Add(watcher);
        }
    }

    /// <summary>A new generation number for a config that changed without a file changing (fetched JWKS); same loop as <see cref="Reload"/>.</summary>
    public long NextGeneration() => ++_generation;

    /// <summary>Re-reads changed files; returns a new config when anything that parses differently changed, else null.</summary>
    public MeshConfig? Reload()
    {
        var present = new HashSet<string>(StringComparer.Ordinal);
        var changed = false;
        foreach (var directory in _directories)
        {
            if (!Directory.Exists(directory))
            {
                continue;
            }
            foreach (var file in Directory.EnumerateFiles(directory).Where(IsConfigFile).Order(StringComparer.Ordinal))
            {
                present.Add(file);
                changed |= ReadFile(file);
            }
        }
        foreach (var removed in _files.Keys.Where(f => !present.Contains(f)).ToList())
        {
            _files.Remove(removed);
            LogFileRemoved(_logger, removed);
            changed = true;
        }
        if (!changed && _generation > 0)
        {
            return null;
        }

        var all = new List<MeshResource>();
        var seen = new Dictionary<string, ResourceMeta>(StringComparer.Ordinal);
        var diagnostics = new List<ConfigDiagnostic>();
        // The newest file wins a resource defined twice, as a later `kubectl apply` replaces an earlier one: copying
        // Istio's task files into the directory one after another behaves as applying them one after another.
        foreach (var state in _files.Values.OrderByDescending(s => s.Written).ThenBy(s => s.Path, StringComparer.Ordinal))
        {
            diagnostics.AddRange(state.Diagnostics);
            foreach (var resource in state.Resources)
            {
                if (seen.TryGetValue(resource.Meta.Key, out var winner))
                {
                    var duplicate = new ConfigDiagnostic(DiagnosticSeverity.Warning, resource.Meta.File, resource.Meta.Line, resource.Meta.ToString(), "metadata.name",
                        $"also defined in {winner.File}:{winner.Line}, a newer file, whose definition is used. Delete one of them to silence this");
                    diagnostics.Add(duplicate);
                    LogDiagnostic(_logger, duplicate.ToString());
                    continue;
                }
                seen[resource.Meta.Key] = resource.Meta;
                all.Add(resource);
            }
        }
        // Newest-first decided who wins; the published order is by file and line, so it does not depend on mtimes.
        all.Sort((a, b) => ByLocation(a.Meta.File, a.Meta.Line, b.Meta.File, b.Meta.Line));
        diagnostics.Sort((a, b) => ByLocation(a.File, a.Line, b.File, b.Line));
        Diagnostics = diagnostics;
        var config = new MeshConfig(all, ++_generation);
        Volatile.Write(ref _loaded, _files.Values.ToDictionary(f => f.Path, f => new LoadedFile(f.Hash, f.Generation, f.Diagnostics), StringComparer.Ordinal));
        LogLoaded(_logger, config.Generation, all.Count, _files.Count);
        return config;
    }

    private bool ReadFile(string path)
    {
        string text;
        try
        {
            text = File.ReadAllText(path);
        }
        catch (IOException e)
        {
            // Mid-write or vanished: the next change event reads it again.
            LogReadFailed(_logger, path, e.Message);
            return false;
        }
        catch (UnauthorizedAccessException e)
        {
            // Unreadable: say so as a diagnostic, and keep whatever this file last gave.
            var denied = new ConfigDiagnostic(DiagnosticSeverity.Error, path, 0, null, null, $"cannot read the file ({e.Message}); its last good resources keep serving. Fix its permissions");
            LogDiagnostic(_logger, denied.ToString());
            var kept = _files.TryGetValue(path, out var last) ? last.Resources : [];
            _files[path] = new FileState(path, "unreadable", DateTime.MinValue, kept, [denied], _generation + 1);
            return true;
        }
        var hash = Convert.ToHexString(SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)));
        if (_files.TryGetValue(path, out var previous) && previous.Hash == hash)
        {
            return false;
        }

        var parsed = ConfigFileParser.Parse(path, text);
        foreach (var diagnostic in parsed.Diagnostics)
        {
            LogDiagnostic(_logger, diagnostic.ToString());
        }
        var resources = parsed.Resources.ToList();
        if (previous is not null && parsed.HasErrors)
        {
            var failed = parsed.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.Resource).ToHashSet();
            var syntaxError = parsed.Resources.Count == 0 && failed.Contains(null);
            foreach (var old in previous.Resources)
            {
                if ((syntaxError || failed.Contains(old.Meta.ToString())) && resources.All(r => r.Meta.Key != old.Meta.Key))
                {
                    resources.Add(old);
                    LogKeptLastGood(_logger, old.Meta.ToString(), path);
                }
            }
        }
        // Reload gives the config these files make the next generation number.
        _files[path] = new FileState(path, hash, File.GetLastWriteTimeUtc(path), resources, parsed.Diagnostics, _generation + 1);
        return true;
    }

    private static int ByLocation(string fileA, int lineA, string fileB, int lineB)
    {
        var byFile = string.CompareOrdinal(fileA, fileB);
        return byFile != 0 ? byFile : lineA.CompareTo(lineB);
    }

    private static bool IsConfigFile(string path) =>
        (path.EndsWith(".yaml", StringComparison.OrdinalIgnoreCase) || path.EndsWith(".yml", StringComparison.OrdinalIgnoreCase))
        && !Path.GetFileName(path).StartsWith('.');

    public void Dispose()
    {
        foreach (var watcher in _watchers)
        {
            watcher.Dispose();
        }
    }

    private sealed record FileState(string Path, string Hash, DateTime Written, IReadOnlyList<MeshResource> Resources, IReadOnlyList<ConfigDiagnostic> Diagnostics, long Generation);

    private IReadOnlyDictionary<string, LoadedFile> _loaded = new Dictionary<string, LoadedFile>();

    /// <summary>Every file of the current config, by full path: its content hash (SHA-256, hex), the generation that first loaded that content, its problems. Safe to read from any thread.</summary>
    public IReadOnlyDictionary<string, LoadedFile> Files => Volatile.Read(ref _loaded);

    [LoggerMessage(Level = LogLevel.Warning, Message = "config: {Diagnostic}")]
    private static partial void LogDiagnostic(ILogger logger, string diagnostic);

    [LoggerMessage(Level = LogLevel.Warning, Message = "config: kept the last good {Resource} from {File} because the new version is invalid")]
    private static partial void LogKeptLastGood(ILogger logger, string resource, string file);

    [LoggerMessage(Level = LogLevel.Information, Message = "config: generation {Generation} loaded, {Resources} resources from {Files} files")]
    private static partial void LogLoaded(ILogger logger, long generation, int resources, int files);

    [LoggerMessage(Level = LogLevel.Information, Message = "config: {File} removed")]
    private static partial void LogFileRemoved(ILogger logger, string file);

    [LoggerMessage(Level = LogLevel.Information, Message = "config: could not read {File} yet, will retry on its next change: {Reason}")]
    private static partial void LogReadFailed(ILogger logger, string file, string reason);
}

/// <summary>One config file as the control plane last read it (see <see cref="DirectoryConfigSource.Files"/>).</summary>
internal sealed record LoadedFile(string Hash, long Generation, IReadOnlyList<ConfigDiagnostic> Diagnostics);
