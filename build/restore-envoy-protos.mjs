// Restores the Envoy xDS v3 protos from the pinned npm package @grpc/grpc-js-xds and writes the
// transitive closure of the protos Bowline needs, one path per line, for Grpc.Tools to compile.
// Nothing of the protos is committed: they live under the given output folder (obj/).
//
// usage: node restore-envoy-protos.mjs <outDir> <version> <rootProto>...
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

const [outDir, version, ...roots] = process.argv.slice(2);
const pkg = `@grpc/grpc-js-xds@${version}`;
const extracted = join(outDir, 'package');

if (!existsSync(join(extracted, 'deps'))) {
  mkdirSync(outDir, { recursive: true });
  execFileSync('npm', ['pack', pkg, '--silent', '--pack-destination', outDir], { stdio: ['ignore', 'ignore', 'inherit'] });
  const tarball = readdirSync(outDir).find(f => f.endsWith('.tgz'));
  if (!tarball) throw new Error(`npm pack ${pkg} produced no tarball in ${outDir}`);
  execFileSync('tar', ['xzf', join(outDir, tarball), '-C', outDir]);
}

const deps = join(extracted, 'deps');
const includeDirs = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map(d => join(deps, d));

// The package's validate.proto predates StringRules.ignore_empty (field 26), which
// envoy/config/core/v3/protocol.proto uses; add the field so protoc accepts the Envoy protos.
const validate = join(deps, 'protoc-gen-validate', 'validate', 'validate.proto');
let text = readFileSync(validate, 'utf8');
if (!text.includes('ignore_empty')) {
  text = text.replace(/(optional bool strict\s*=\s*25[^;]*;)/, '$1\n\n  // Added by Bowline\'s build: used by the Envoy protos, missing from this copy.\n  optional bool ignore_empty = 26;');
  if (!text.includes('ignore_empty')) throw new Error(`could not patch ${validate}: StringRules.strict (field 25) not found`);
  writeFileSync(validate, text);
}

function locate(rel) {
  for (const dir of includeDirs) {
    const p = join(dir, rel);
    if (existsSync(p)) return { dir, rel };
  }
  return null;
}

const seen = new Map();
const queue = [...roots];
while (queue.length) {
  const rel = queue.pop();
  if (seen.has(rel)) continue;
  // Well-known types ship with Google.Protobuf and Grpc.Tools.
  if (rel.startsWith('google/protobuf/')) { seen.set(rel, null); continue; }
  const found = locate(rel);
  if (!found) throw new Error(`proto ${rel} not found in ${includeDirs.join(', ')}`);
  seen.set(rel, found);
  const src = readFileSync(join(found.dir, rel), 'utf8');
  for (const m of src.matchAll(/^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm)) queue.push(m[1]);
}

// One list per include directory, so each proto is compiled relative to its own root and
// same-named files (fault.proto, rbac.proto, ...) land in different output folders.
const found = [...seen.values()].filter(Boolean);
for (const dir of includeDirs) {
  const name = dir.split('/').pop();
  const lines = found.filter(f => f.dir === dir).map(f => `${f.dir}/${f.rel}`).sort();
  writeFileSync(join(outDir, `protos-${name}.txt`), lines.join('\n') + '\n');
}
writeFileSync(join(outDir, 'protos.txt'), found.map(f => f.rel).sort().join('\n') + '\n');
console.log(`bowline: ${found.length} Envoy protos restored from ${pkg}`);
