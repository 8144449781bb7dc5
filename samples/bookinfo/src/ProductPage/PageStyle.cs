namespace Bowline.Samples.Bookinfo.ProductPage;

/// <summary>The page's stylesheet: inlined into the page (which loads nothing else) and also
/// served as <c>/static/bookinfo.css</c>, so the gateway's <c>/static</c> route has a target.</summary>
internal static class PageStyle
{
    public const string Path = "bookinfo.css";

    public const string Css = """
        body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #222; background: #f6f7f9; }
        header { display: flex; justify-content: space-between; align-items: center; padding: 10px 24px; background: #2b3a4a; color: #fff; }
        header a { color: #fff; }
        header .brand { font-weight: 600; text-decoration: none; }
        header form { display: inline; margin: 0; }
        header input { padding: 3px 6px; margin-right: 4px; border: 1px solid #889; border-radius: 3px; }
        main { max-width: 960px; margin: 24px auto; padding: 0 24px; }
        h1 { margin: 0 0 8px; font-size: 28px; }
        h2 { font-size: 18px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
        .columns { display: flex; gap: 32px; flex-wrap: wrap; }
        .columns > section { flex: 1 1 360px; }
        table { border-collapse: collapse; }
        th, td { text-align: left; padding: 3px 16px 3px 0; }
        th { color: #556; font-weight: 500; }
        blockquote { margin: 0 0 16px; padding: 8px 12px; background: #fff; border-left: 3px solid #8aa; }
        blockquote small { display: block; color: #667; }
        .stars { font-size: 18px; letter-spacing: 2px; }
        .error { color: #a33; }
        .served-by { color: #667; font-size: 13px; }
        """;
}
