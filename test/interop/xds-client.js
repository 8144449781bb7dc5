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
//   options: --metadata key=value (repeatable; sent with every call), --message text (default "xds <i>"),
//            --deadline SECONDS per call (default 5).
//
//   --concurrency K keeps up to K calls in flight at once instead of one after another. Calls still
//   start one at a time: each once the one before it is in flight (its response headers arrived)
//   or has ended. grpc-js counts a call against a cluster's max_requests (gRFC A32) only once it
//   has started on a subchannel, after the pick, so calls picked in the same tick would all pass
//   the check; starting them in turn makes every pick see the calls before it.
//   --release text: once every call has started or ended, make one more call with this message
//   (and --release-metadata key=value, repeatable, instead of --metadata). The echo server's
//   "hold:<group>" calls wait for a "release:<group>" call, so a test holds K calls open with
//   --concurrency K --message hold:g --release release:g and routes the release past the limit.
//
// stdout: exactly one JSON line,
//   {"ok":N,"failed":N,"versions":{"v1":N,...},"hosts":{"<hostname>":N,...},"codes":{"UNAVAILABLE":N,...},
//    "peakInFlight":N,"release":{"message":"...","version":"v1"} or {"error":"..."} or null,"errors":[...]}.
//   peakInFlight is the most calls that had their response headers and had not yet ended, at once.
// Exit codes: 0 when at least one call succeeded, 1 when none did, 2 when the whole run passed
// OVERALL_TIMEOUT_MS (the summary so far is still printed), 64 for bad arguments or setup.
// Set GRPC_TRACE=xds_client,xds_resolver GRPC_VERBOSITY=DEBUG to watch the ADS exchange on stderr.
'use strict';

const fs = require('fs');
const path = require('path');

const DEFAULT_DEADLINE_SECONDS = 5;
const OVERALL_TIMEOUT_MS = 60000;
const MAX_ERRORS = 5;

function fail(message) {
  process.stderr.write(`xds-client: ${message}\n`);
  process.exit(64);
}

function parseArgs(argv) {
  const options = {
    target: null, count: 1, proto: null, metadata: [], message: null,
    deadlineSeconds: DEFAULT_DEADLINE_SECONDS, concurrency: 1, release: null, releaseMetadata: [],
  };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i];
    const value = argv[i + 1];
    if (value === undefined) fail(`${name} needs a value.`);
    switch (name) {
      case '--target': options.target = value; break;
      case '--count': options.count = Number(value); break;
      case '--proto': options.proto = value; break;
      case '--message': options.message = value; break;
      case '--deadline': options.deadlineSeconds = Number(value); break;
      case '--concurrency': options.concurrency = Number(value); break;
      case '--release': options.release = value; break;
      case '--metadata': options.metadata.push(parsePair(name, value)); break;
      case '--release-metadata': options.releaseMetadata.push(parsePair(name, value)); break;
      default: fail(`unknown option '${name}'.`);
    }
  }
  if (!options.target || !options.target.startsWith('xds:///')) {
    fail('--target must be an xds:/// URI, e.g. xds:///grpc-echo.default.svc.cluster.local:50051.');
  }
  if (!Number.isInteger(options.count) || options.count < 1) fail('--count must be a positive integer.');
  if (!options.proto) fail('--proto is required (the path to echo.proto).');
  if (!(options.deadlineSeconds > 0)) fail('--deadline must be a positive number of seconds.');
  if (!Number.isInteger(options.concurrency) || options.concurrency < 1) fail('--concurrency must be a positive integer.');
  if (options.releaseMetadata.length > 0 && options.release === null) fail('--release-metadata needs --release.');
  return options;
}

function parsePair(name, value) {
  const eq = value.indexOf('=');
  if (eq < 1) fail(`${name} ${value}: expected key=value.`);
  return [value.slice(0, eq), value.slice(eq + 1)];
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

// One unary call. `started` resolves when the call is in flight (its response headers arrived) or
// has ended, whichever comes first; `done` settles with the call's outcome.
function echoCall(client, message, metadata, deadlineSeconds, onHeaders) {
  let markStarted;
  const started = new Promise((resolve) => { markStarted = resolve; });
  const done = new Promise((resolve, reject) => {
    const deadline = new Date(Date.now() + deadlineSeconds * 1000);
    const call = client.Echo({ message }, metadata, { deadline }, (err, response) => {
      markStarted();
      if (err) reject(err); else resolve(response);
    });
    call.on('metadata', () => {
      onHeaders();
      markStarted();
    });
  });
  return { started, done };
}

function metadataOf(grpc, pairs) {
  const metadata = new grpc.Metadata();
  for (const [key, value] of pairs) metadata.add(key, value);
  return metadata;
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
  const summary = { ok: 0, failed: 0, versions: {}, hosts: {}, codes: {}, peakInFlight: 0, release: null, errors: [] };
  const metadata = metadataOf(grpc, options.metadata);

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
  let inFlight = 0;
  const record = (call) => {
    let headers = false;
    const onHeaders = () => {
      headers = true;
      inFlight++;
      summary.peakInFlight = Math.max(summary.peakInFlight, inFlight);
    };
    const { started, done } = call(onHeaders);
    const outcome = done.then(
      (response) => {
        summary.ok++;
        summary.versions[response.version] = (summary.versions[response.version] || 0) + 1;
        summary.hosts[response.hostname] = (summary.hosts[response.hostname] || 0) + 1;
      },
      (err) => {
        summary.failed++;
        const code = grpc.status[err.code] ?? String(err.code);
        summary.codes[code] = (summary.codes[code] || 0) + 1;
        if (summary.errors.length < MAX_ERRORS && !summary.errors.includes(err.message)) {
          summary.errors.push(err.message);
        }
      }).finally(() => {
      if (headers) inFlight--;
    });
    return { started, outcome };
  };

  const outstanding = new Set();
  for (let i = 1; i <= options.count; i++) {
    while (outstanding.size >= options.concurrency) await Promise.race(outstanding);
    const { started, outcome } = record((onHeaders) =>
      echoCall(client, options.message ?? `xds ${i}`, metadata, options.deadlineSeconds, onHeaders));
    outstanding.add(outcome);
    outcome.then(() => outstanding.delete(outcome));
    await started;
  }
  if (options.release !== null) {
    const { done } = echoCall(client, options.release, metadataOf(grpc, options.releaseMetadata), options.deadlineSeconds, () => {});
    try {
      const response = await done;
      summary.release = { message: response.message, version: response.version };
    } catch (err) {
      summary.release = { error: `${grpc.status[err.code] ?? err.code}: ${err.message}` };
    }
  }
  await Promise.all(outstanding);
  client.close();
  finish(summary.ok > 0 ? 0 : 1);
}

main().catch((e) => fail(e.stack || String(e)));
