using System.Text.Encodings.Web;
using System.Text.Json;

namespace Bowline.Samples.Bookinfo.Json;

/// <summary>The JSON context every role uses.</summary>
internal static class BookinfoJson
{
    /// <summary><see cref="BookinfoJsonContext"/> with relaxed escaping, so a product's
    /// <c>descriptionHtml</c> reads <c>&lt;b&gt;</c> as Istio's productpage writes it, not
    /// <c>\u003Cb\u003E</c>. Safe here: the bodies are served as application/json, never
    /// inlined into HTML.</summary>
    public static BookinfoJsonContext Context { get; } = new(
        new JsonSerializerOptions(BookinfoJsonContext.Default.Options)
        {
            Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
        });
}
