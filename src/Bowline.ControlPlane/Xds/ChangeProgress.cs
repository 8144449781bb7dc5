using Bowline.ControlPlane.Config;

namespace Bowline.ControlPlane.Xds;

/// <summary>
/// How far one config file's current content has reached the mesh, for <c>bowline wait</c>: whether the control plane
/// has read that content (the caller names it by its SHA-256), whether it was rejected, and for every connected proxy
/// whether the generation it made has been ACKed, NACKed, is still on its way, or changed nothing for it.
/// </summary>
internal static class ChangeProgress
{
    public sealed record Proxy(string Id, string Workload, string State, string? Detail);

    public sealed record Report(string File, string State, long? Generation, IReadOnlyList<string> Errors, IReadOnlyList<Proxy> Proxies);

    public static Report Of(string file, string hash, DirectoryConfigSource source, ConnectedProxies proxies)
    {
        if (string.IsNullOrWhiteSpace(file))
        {
            return new Report(file, "unknown", null, ["no file given: ask /debug/wait?file=PATH&hash=SHA256 with the path of a file in the config directories"], []);
        }
        var path = Path.GetFullPath(file);
        var (found, loaded) = Find(path, hash, source.Files);
        if (loaded is null)
        {
            return new Report(path, "unknown", null, [$"{path} is not a file of the control plane's config directories (yet); copy it there, or wait for the control plane to read it"], []);
        }
        if (!string.Equals(loaded.Hash, hash, StringComparison.OrdinalIgnoreCase))
        {
            // Matched by name only: say which file, in case the caller meant another one.
            IReadOnlyList<string> hint = found == path ? [] : [$"{path} is not in the control plane's config directories; comparing it with {found}, the one loaded file of that name"];
            return new Report(found, "not-loaded", null, hint, []);
        }
        path = found;
        var errors = loaded.Diagnostics.Where(d => d.Severity == DiagnosticSeverity.Error).Select(d => d.ToString()).ToList();
        var states = proxies.All.Select(p =>
        {
            var (state, detail) = p.StatusOf(loaded.Generation);
            return new Proxy(p.Node.Id, $"{p.Node.Name}.{p.Node.Namespace}", state.ToString().ToLowerInvariant(), detail);
        }).ToList();
        return new Report(path, errors.Count > 0 ? "rejected" : "loaded", loaded.Generation, errors, states);
    }

    /// <summary>
    /// The loaded file the caller means. By path first; a caller that sees the directory under another path (a
    /// symbolic link, a mount, another machine) finds it by its name when exactly one loaded file has that name; if
    /// its content differs, the control plane has not reread it yet (the report then says which file it compared).
    /// </summary>
    private static (string Path, LoadedFile? File) Find(string path, string hash, IReadOnlyDictionary<string, LoadedFile> files)
    {
        foreach (var (key, file) in files)
        {
            if (Path.GetFullPath(key) == path)
            {
                return (key, file);
            }
        }
        // Only when the name is unambiguous: two loaded files of that name could each be the one meant.
        var name = Path.GetFileName(path);
        return files.Where(f => Path.GetFileName(f.Key) == name).ToList() is [var only] ? (only.Key, only.Value) : (path, null);
    }
}
