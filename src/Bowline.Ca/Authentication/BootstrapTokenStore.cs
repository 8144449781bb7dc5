using System.Buffers.Text;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Bowline.Ca.Internal;
using Grpc.Core;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;

namespace Bowline.Ca.Authentication;

/// <summary>
/// The embedded default's bootstrap credentials: a random 256-bit bearer token per workload, handed out by
/// <see cref="Issue"/> (which <c>bowline up</c> calls when it starts a workload) and mapped to that workload's
/// namespace and service account. A workload proves who it is by sending <c>authorization: Bearer &lt;token&gt;</c>.
/// </summary>
/// <remarks>
/// Only SHA-256 hashes of the tokens are kept, in <c>bootstrap-tokens.json</c> (0600) next to the CA's files, so a
/// control plane restart keeps every token valid and a copy of the file lets no one in. Another process may issue
/// tokens into the same file (one writer at a time): the store reloads it when it changes. On Kubernetes a
/// TokenReview-based <see cref="ICallerAuthenticator"/> replaces this class.
/// </remarks>
public sealed partial class BootstrapTokenStore : ICallerAuthenticator
{
    public const string FileName = "bootstrap-tokens.json";

    private const int TokenBytes = 32;
    private const string Scheme = "Bearer ";

    private readonly string _path;
    private readonly TimeProvider _time;
    private readonly ILogger _logger;
    private readonly Lock _gate = new();
    private volatile Loaded _loaded;

    private BootstrapTokenStore(string path, TimeProvider time, ILogger logger, Loaded loaded)
    {
        _path = path;
        _time = time;
        _logger = logger;
        _loaded = loaded;
    }

    /// <summary>Opens the token file in <paramref name="directory"/>, creating the directory if needed. A corrupt file is an error here.</summary>
    public static BootstrapTokenStore Open(string directory, TimeProvider time, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(directory);
        ArgumentNullException.ThrowIfNull(time);
        SecureFiles.EnsureDirectory(directory);
        var path = Path.Combine(directory, FileName);
        return new BootstrapTokenStore(path, time, logger ?? NullLogger.Instance, Load(path));
    }

    /// <summary>Creates a new token for <paramref name="identity"/> and persists its hash. Returns the token; it cannot be recovered later.</summary>
    public string Issue(WorkloadIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        Span<byte> secret = stackalloc byte[TokenBytes];
        RandomNumberGenerator.Fill(secret);
        var token = Base64Url.EncodeToString(secret);
        CryptographicOperations.ZeroMemory(secret);
        var entry = new TokenEntry(identity.Namespace, identity.ServiceAccount, Base64Url.EncodeToString(Hash(token)), _time.GetUtcNow());
        Update(entries => [.. entries, entry]);
        return token;
    }

    /// <summary>Revokes every token of <paramref name="identity"/>; returns how many there were.</summary>
    public int Revoke(WorkloadIdentity identity)
    {
        ArgumentNullException.ThrowIfNull(identity);
        var removed = 0;
        Update(entries =>
        {
            var kept = entries.Where(e => !Matches(e, identity)).ToList();
            removed = entries.Count - kept.Count;
            return kept;
        });
        return removed;
    }

    public ValueTask<CallerAuthentication> AuthenticateAsync(Metadata requestHeaders, CancellationToken cancellationToken)
    {
        ArgumentNullException.ThrowIfNull(requestHeaders);
        return ValueTask.FromResult(Authenticate(requestHeaders.Get("authorization")?.Value));
    }

    /// <summary>Checks an <c>authorization</c> header value.</summary>
    internal CallerAuthentication Authenticate(string? authorization)
    {
        if (string.IsNullOrEmpty(authorization))
        {
            return CallerAuthentication.Failed("no 'authorization' metadata: send 'authorization: Bearer <token>' with the bootstrap token this workload was given (bowline up passes it to the sidecar)");
        }
        if (!authorization.StartsWith(Scheme, StringComparison.OrdinalIgnoreCase))
        {
            return CallerAuthentication.Failed("the 'authorization' metadata is not a bearer token: send 'authorization: Bearer <token>'");
        }
        var token = authorization.AsSpan(Scheme.Length).Trim();
        // Tokens are 43 characters; anything far longer is not one, and hashing it would only cost us.
        if (token.IsEmpty || token.Length > 256)
        {
            return CallerAuthentication.Failed("the bearer token is empty or too long to be one this control plane issued");
        }

        var presented = Hash(token);
        WorkloadIdentity? identity = null;
        // Every entry is compared, in constant time, and the loop never stops early: how long this takes tells a
        // caller nothing about how close its guess was.
        foreach (var entry in Current().Entries)
        {
            if (CryptographicOperations.FixedTimeEquals(presented, entry.Hash))
            {
                identity ??= entry.Identity;
            }
        }
        return identity is null
            ? CallerAuthentication.Failed("the bearer token is not one this control plane issued, or it was revoked: restart the workload with bowline up so it is given a new one")
            : CallerAuthentication.Succeeded(identity);
    }

    private Loaded Current()
    {
        var loaded = _loaded;
        var stamp = Stamp(_path);
        if (stamp == loaded.Stamp)
        {
            return loaded;
        }
        lock (_gate)
        {
            if (Stamp(_path) == _loaded.Stamp)
            {
                return _loaded;
            }
            try
            {
                _loaded = Load(_path);
            }
            catch (Exception e) when (e is IOException or JsonException or FormatException or ArgumentException)
            {
                Log.ReloadFailed(_logger, _path, e.Message);
            }
            return _loaded;
        }
    }

    private void Update(Func<IReadOnlyList<TokenEntry>, IReadOnlyList<TokenEntry>> change)
    {
        lock (_gate)
        {
            // Read again: another process may have issued tokens since we last looked.
            var current = Load(_path);
            var updated = change(current.Raw);
            SecureFiles.WritePrivate(_path, JsonSerializer.Serialize(new TokenFile(updated), TokenJson.Default.TokenFile));
            _loaded = Load(_path);
        }
    }

    private static Loaded Load(string path)
    {
        var stamp = Stamp(path);
        if (stamp.Length < 0)
        {
            return new Loaded(stamp, [], []);
        }
        var file = JsonSerializer.Deserialize(File.ReadAllText(path), TokenJson.Default.TokenFile)
            ?? throw new JsonException($"{path} holds no token list");
        var raw = file.Tokens ?? [];
        var entries = raw.Select(e => (Identity: new WorkloadIdentity(e.Namespace, e.ServiceAccount), Hash: Base64Url.DecodeFromChars(e.Sha256))).ToArray();
        return new Loaded(stamp, raw, entries);
    }

    private static (DateTime Written, long Length) Stamp(string path)
    {
        var info = new FileInfo(path);
        return info.Exists ? (info.LastWriteTimeUtc, info.Length) : (default, -1);
    }

    private static byte[] Hash(ReadOnlySpan<char> token)
    {
        Span<byte> utf8 = stackalloc byte[Encoding.UTF8.GetMaxByteCount(token.Length)];
        var length = Encoding.UTF8.GetBytes(token, utf8);
        return SHA256.HashData(utf8[..length]);
    }

    private static bool Matches(TokenEntry entry, WorkloadIdentity identity) =>
        string.Equals(entry.Namespace, identity.Namespace, StringComparison.Ordinal) && string.Equals(entry.ServiceAccount, identity.ServiceAccount, StringComparison.Ordinal);

    private sealed record Loaded((DateTime Written, long Length) Stamp, IReadOnlyList<TokenEntry> Raw, (WorkloadIdentity Identity, byte[] Hash)[] Entries);

    internal sealed record TokenFile([property: JsonPropertyName("tokens")] IReadOnlyList<TokenEntry>? Tokens);

    internal sealed record TokenEntry(
        [property: JsonPropertyName("namespace")] string Namespace,
        [property: JsonPropertyName("serviceAccount")] string ServiceAccount,
        [property: JsonPropertyName("sha256")] string Sha256,
        [property: JsonPropertyName("issuedAt")] DateTimeOffset IssuedAt);

    [JsonSourceGenerationOptions(WriteIndented = true)]
    [JsonSerializable(typeof(TokenFile))]
    internal sealed partial class TokenJson : JsonSerializerContext;

    private static partial class Log
    {
        [LoggerMessage(Level = LogLevel.Warning, Message = "ca: could not reload bootstrap tokens from {Path}, keeping the tokens loaded before: {Reason}")]
        public static partial void ReloadFailed(ILogger logger, string path, string reason);
    }
}
