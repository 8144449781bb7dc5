using System.Collections;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace Bowline.Proxy.Configuration;

/// <summary>
/// The proxy's promise that an ACK means "applied": every compile step names the fields of its message it implements,
/// and any other field that is set makes the update a NACK naming the resource and the field. Fields the proxy
/// deliberately ignores are listed, with the reason, in <see cref="IgnoredXdsFields"/>.
/// </summary>
internal static class XdsFields
{
    /// <summary>Throws <see cref="ProxyConfigException"/> when <paramref name="message"/> sets a field outside <paramref name="handled"/> and the ignore list.</summary>
    public static void Check(IMessage message, string where, params ReadOnlySpan<string> handled)
    {
        List<string>? unsupported = null;
        var descriptor = message.Descriptor;
        foreach (var field in descriptor.Fields.InDeclarationOrder())
        {
            if (handled.Contains(field.Name) || IgnoredXdsFields.IsIgnored(descriptor.FullName, field.Name) || !IsSet(message, field))
            {
                continue;
            }
            (unsupported ??= []).Add(field.Name);
        }
        if (unsupported is not null)
        {
            var fields = string.Join(", ", unsupported);
            throw new ProxyConfigException($"{where}: {descriptor.FullName} field{(unsupported.Count > 1 ? "s" : "")} {fields} {(unsupported.Count > 1 ? "are" : "is")} not supported by the Bowline proxy; remove {(unsupported.Count > 1 ? "them" : "it")} or see docs/xds-support.md");
        }
    }

    private static bool IsSet(IMessage message, FieldDescriptor field)
    {
        var value = field.Accessor.GetValue(message);
        if (field.IsRepeated || field.IsMap)
        {
            return value is ICollection { Count: > 0 };
        }
        if (field.HasPresence)
        {
            return field.Accessor.HasValue(message);
        }
        return value switch
        {
            null => false,
            string s => s.Length > 0,
            ByteString b => !b.IsEmpty,
            bool b => b,
            Enum e => Convert.ToInt64(e, System.Globalization.CultureInfo.InvariantCulture) != 0,
            int i => i != 0,
            uint u => u != 0,
            long l => l != 0,
            ulong ul => ul != 0,
            double d => d != 0,
            float f => f != 0,
            _ => true,
        };
    }
}
