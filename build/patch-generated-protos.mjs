// Envoy's rate limit expression descriptor is a message named `Descriptor`, and protoc's C# generator gives every
// message a static `Descriptor` property: the class cannot compile (CS0542). Renaming that one property in the
// generated file keeps the message, its wire format and its type URL exactly Envoy's.
import { existsSync, readFileSync, writeFileSync } from "node:fs";

const [file] = process.argv.slice(2);
if (existsSync(file)) {
  const before = readFileSync(file, "utf8");
  const after = before
    .replace("public static pbr::MessageDescriptor Descriptor {", "public static pbr::MessageDescriptor MessageDescriptor {")
    .replace("pbr::MessageDescriptor pb::IMessage.Descriptor {\n      get { return Descriptor; }", "pbr::MessageDescriptor pb::IMessage.Descriptor {\n      get { return MessageDescriptor; }");
  if (after !== before) {
    writeFileSync(file, after);
  }
}
