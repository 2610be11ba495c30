#!/usr/bin/env node
// Builds catdog's own native addons with the node-gyp that ships with npm: native/jpeg-decode (JPEG decoding with
// libjpeg-turbo's DCT scaling, the fast path of src/images/decode.ts, against libjpeg's system headers) and
// native/stderr-gate (dup2 for node, so src/ml/native-stderr.ts can hide what libtensorflow writes to fd 2 while it
// loads). It never fails the install: each addon is an improvement catdog runs without, so any failure (no compiler,
// no libjpeg headers, no native/ folder as in the Docker build's dependency layer) prints one line saying so.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { localNodeHeaders } from './node-headers.mjs';

const nativeDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native');
const log = (message) => console.log(`[catdog build-native] ${message}`);

const ADDONS = [
  {
    folder: 'jpeg-decode',
    binary: 'jpeg_decode.node',
    what: 'the JPEG decoder',
    fallback: 'JPEGs will be decoded by sharp (slower); install g++, make and libjpeg62-turbo-dev, then run `node scripts/build-native.mjs`',
    built: "JPEGs that shrink or enlarge up to 2x are decoded with libjpeg-turbo's DCT scaling",
  },
  {
    folder: 'stderr-gate',
    binary: 'stderr_gate.node',
    what: 'the stderr gate',
    fallback: "TensorFlow's start-up lines are hidden only when stderr is a terminal, a pipe or a file; install g++ and make, then run `node scripts/build-native.mjs`",
    built: "TensorFlow's start-up lines are hidden whatever stderr is",
  },
];

/** node-gyp as bundled with the npm that runs this install (or sits beside this node). */
function findNodeGyp() {
  const candidates = [
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((candidate) => candidate && fs.existsSync(candidate));
}

function build(addon, nodeGyp) {
  const addonDir = path.join(nativeDir, addon.folder);
  if (!fs.existsSync(path.join(addonDir, 'binding.gyp'))) {
    log(`no ${addonDir}/binding.gyp in this tree; ${addon.fallback}`);
    return;
  }
  if (!nodeGyp) {
    log(`node-gyp not found next to npm; ${addon.fallback}`);
    return;
  }
  const build = spawnSync(process.execPath, [nodeGyp, 'rebuild'], {
    cwd: addonDir,
    encoding: 'utf8',
    env: { ...process.env, ...localNodeHeaders() },
    timeout: 300_000,
  });
  if (build.status !== 0 || build.error) {
    // node-gyp ends with its own "not ok"; the compiler's or make's first complaint is what says why.
    const lines = `${build.stdout ?? ''}\n${build.stderr ?? ''}\n${build.error?.message ?? ''}`.split('\n').map((line) => line.trim());
    const cause = lines.find((line) => /error|not found|no such/i.test(line) && !line.startsWith('gyp ')) ?? `node-gyp exited with ${build.status}`;
    log(`${addon.what} did not build (${cause}); ${addon.fallback}`);
    return;
  }
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(addonDir, 'build', 'Release', addon.binary))})`], { encoding: 'utf8' });
  if (probe.status !== 0) {
    log(`${addon.what} built but does not load (${probe.stderr.trim().split('\n')[0]}); ${addon.fallback}`);
    return;
  }
  log(`built native/${addon.folder}: ${addon.built}`);
}

const nodeGyp = findNodeGyp();
for (const addon of ADDONS) build(addon, nodeGyp);
