#!/usr/bin/env node
// A proxyless gRPC client (grpc-js with grpc-js-xds) that gets its routes, clusters and
// endpoints from Bowline's control plane over ADS, with no sidecar in the path. The end-to-end
// test runs it to prove the control plane speaks xDS that a real, independent client accepts
// (gRFC A27 and successors), not just xDS our own proxy tolerates.
//
// Usage:
//   GRPC_XDS_BOOTSTRAP=/path/bootstrap.json \
//   node xds-client.js --target xds:///grpc-echo.default.svc.cluster.local:50051 \
//                      --count 200 --proto ../../samples/grpc-echo/protos/echo.proto
//
//   options: --metadata key=value (repeatable; sent with every call), --message text (default "xds <i>").
//
// stdout: exactly one JSON line,
//   {"ok":N,"failed":N,"versions":{"v1":N,...},"hosts":{"<hostname>":N,...},"codes":{"UNAVAILABLE":N,...},"errors":[...]}.
// Exit codes: 0 when at least one call succeeded, 1 when none did, 2 when the whole run passed
// OVERALL_TIMEOUT_MS (the summary so far is still printed), 64 for bad arguments or setup.
// Set GRPC_TRACE=xds_client,xds_resolver GRPC_VERBOSITY=DEBUG to watch the ADS exchange on stderr.
'use strict';

const fs = require('fs');
const path = require('path');

const CALL_DEADLINE_MS = 5000;
const OVERALL_TIMEOUT_MS = 60000;
const MAX_ERRORS = 5;

function fail(message) {
  process.stderr.write(`xds-client: ${message}\n`);
  process.exit(64);
}

function parseArgs(argv) {
  const options = { target: null, count: 1, proto: null, metadata: [], message: null };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (value === undefined) fail(`${name} needs a value.`);
    switch (name) {
      case '--target': options.target = value; break;
      case '--count': options.count = Number(value); break;
      case '--proto': options.proto = value; break;
      case '--message': options.message = value; break;
      case '--metadata': {
        const eq = value.indexOf('=');
        if (eq < 1) fail(`--metadata ${value}: expected key=value.`);
        options.metadata.push([value.slice(0, eq), value.slice(eq + 1)]);
        break;
      }
      default: fail(`unknown option '${name}'.`);
    }
  }
  if (!options.target || !options.target.startsWith('xds:///')) {
    fail('--target must be an xds:/// URI, e.g. xds:///grpc-echo.default.svc.cluster.local:50051.');
  }
  if (!Number.isInteger(options.count) || options.count < 1) fail('--count must be a positive integer.');
  if (!options.proto) fail('--proto is required (the path to echo.proto).');
  return options;
}

// The test passes a path relative to its working directory; a person running the script by hand
// from elsewhere most likely means it relative to this file, so try that second.
function resolveProto(given) {
  for (const candidate of [path.resolve(given), path.resolve(__dirname, given)]) {
    if (fs.existsSync(candidate)) return candidate;
  }
  return fail(`--proto '${given}' not found (relative to ${process.cwd()} or ${__dirname}).`);
}

function checkBootstrap() {
  const file = process.env.GRPC_XDS_BOOTSTRAP;
  if (file) {
    if (!fs.existsSync(file)) fail(`GRPC_XDS_BOOTSTRAP='${file}' does not exist; write the bootstrap JSON there first.`);
  } else if (!process.env.GRPC_XDS_BOOTSTRAP_CONFIG) {
    fail('set GRPC_XDS_BOOTSTRAP to the path of an xDS bootstrap JSON (see bootstrap.example.json).');
  }
}

// grpc-js-xds reports a bad bootstrap only as a misleading per-call error ("Cannot read
// properties of null ..."), so validate it up front with the library's own loader and name the
// real problem. grpc-js-xds 1.14 requires node.locality, for example, even if empty.
function validateBootstrap() {
  let bootstrap;
  try {
    bootstrap = require('@grpc/grpc-js-xds/build/src/xds-bootstrap');
  } catch {
    return; // Internal module moved in another version; the per-call error will have to do.
  }
  try {
    bootstrap.loadBootstrapInfo();
  } catch (e) {
    fail(`invalid xDS bootstrap: ${e.message}`);
  }
}

function loadEchoService(grpc, protoLoader, protoPath) {
  let definition;
  try {
    definition = protoLoader.loadSync(protoPath, {
      keepCase: true,
      longs: Number,
      enums: String,
      defaults: true,
      includeDirs: [path.dirname(protoPath)],
    });
  } catch (e) {
    return fail(`cannot load ${protoPath}: ${e.message}`);
  }
  const service = grpc.loadPackageDefinition(definition).bowline?.samples?.echo?.v1?.EchoService;
  if (!service) fail(`${protoPath} does not define bowline.samples.echo.v1.EchoService.`);
  return service;
}

function echoOnce(client, message, metadata) {
  return new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + CALL_DEADLINE_MS);
    client.Echo({ message }, metadata, { deadline }, (err, response) => (err ? reject(err) : resolve(response)));
  });
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const protoPath = resolveProto(options.proto);
  checkBootstrap();

  const grpc = require('@grpc/grpc-js');
  const protoLoader = require('@grpc/proto-loader');
  // Registers the xds: resolver and the xDS load-balancing policies with grpc-js.
  require('@grpc/grpc-js-xds').register();
  validateBootstrap();

  const EchoService = loadEchoService(grpc, protoLoader, protoPath);
  const summary = { ok: 0, failed: 0, versions: {}, hosts: {}, codes: {}, errors: [] };
  const metadata = new grpc.Metadata();
  for (const [key, value] of options.metadata) metadata.add(key, value);

  // Printed exactly once, whichever of completion and the overall timeout comes first.
  let printed = false;
  const finish = (code) => {
    if (!printed) {
      printed = true;
      process.stdout.write(`${JSON.stringify(summary)}\n`);
    }
    // The xDS client holds its ADS stream open; exit explicitly rather than wait for it.
    process.exit(code);
  };
  setTimeout(() => {
    if (summary.errors.length < MAX_ERRORS) summary.errors.push(`overall timeout after ${OVERALL_TIMEOUT_MS / 1000} s`);
    finish(2);
  }, OVERALL_TIMEOUT_MS);

  const client = new EchoService(options.target, grpc.credentials.createInsecure());
  for (let i = 1; i <= options.count; i++) {
    try {
      const response = await echoOnce(client, options.message ?? `xds ${i}`, metadata);
      summary.ok++;
      summary.versions[response.version] = (summary.versions[response.version] || 0) + 1;
      summary.hosts[response.hostname] = (summary.hosts[response.hostname] || 0) + 1;
    } catch (err) {
      summary.failed++;
      const code = grpc.status[err.code] ?? String(err.code);
      summary.codes[code] = (summary.codes[code] || 0) + 1;
      if (summary.errors.length < MAX_ERRORS && !summary.errors.includes(err.message)) {
        summary.errors.push(err.message);
      }
    }
  }
  client.close();
  finish(summary.ok > 0 ? 0 : 1);
}

main().catch((e) => fail(e.stack || String(e)));
