using Bowline.Proxy.Configuration;

namespace Bowline.Proxy.Filters.Http;

/// <summary>Envoy's <c>FractionalPercent</c> as parts per million, rolled with the injected random source.</summary>
internal readonly record struct Fraction(int PerMillion)
{
    public static readonly Fraction All = new(1_000_000);
    public static readonly Fraction None = new(0);

    public static Fraction From(Envoy.Type.V3.FractionalPercent? percent, Fraction fallback, string where)
    {
        if (percent is null)
        {
            return fallback;
        }
        XdsFields.Check(percent, where, "numerator", "denominator");
        var scale = percent.Denominator switch
        {
            Envoy.Type.V3.FractionalPercent.Types.DenominatorType.Hundred => 10_000L,
            Envoy.Type.V3.FractionalPercent.Types.DenominatorType.TenThousand => 100L,
            _ => 1L,
        };
        return new Fraction((int)Math.Min(1_000_000L, percent.Numerator * scale));
    }

    /// <summary>Envoy's RuntimeFractionalPercent; without a runtime, the default value is the value.</summary>
    public static Fraction From(Envoy.Config.Core.V3.RuntimeFractionalPercent? percent, Fraction fallback, string where) =>
        percent is null ? fallback : From(percent.DefaultValue, Fraction.None, where);

    public bool Roll(Random random) => PerMillion >= 1_000_000 || (PerMillion > 0 && random.Next(1_000_000) < PerMillion);
}
