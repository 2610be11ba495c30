#!/usr/bin/env node
// Builds catdog's own native addon, native/jpeg-decode (JPEG decoding with libjpeg-turbo's DCT scaling, the fast
// path of src/images/decode.ts), with the node-gyp that ships with npm, against libjpeg's system headers.
// It never fails the install: without the addon every JPEG is decoded by sharp, as before, only slower. So any
// failure (no compiler, no libjpeg headers, no native/ folder as in the Docker build's dependency layer) prints
// one line saying so and exits 0.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { localNodeHeaders } from './node-headers.mjs';

const addonDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'native', 'jpeg-decode');
const log = (message) => console.log(`[catdog build-native] ${message}`);
const FALLBACK = 'JPEGs will be decoded by sharp (slower); install g++, make and libjpeg62-turbo-dev, then run `node scripts/build-native.mjs`';

/** node-gyp as bundled with the npm that runs this install (or sits beside this node). */
function findNodeGyp() {
  const candidates = [
    process.env.npm_execpath && path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  return candidates.find((candidate) => candidate && fs.existsSync(candidate));
}

function main() {
  if (!fs.existsSync(path.join(addonDir, 'binding.gyp'))) {
    log(`no ${addonDir}/binding.gyp in this tree; ${FALLBACK}`);
    return;
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) {
    log(`node-gyp not found next to npm; ${FALLBACK}`);
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
    log(`the JPEG decoder did not build (${cause}); ${FALLBACK}`);
    return;
  }
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(addonDir, 'build', 'Release', 'jpeg_decode.node'))})`], { encoding: 'utf8' });
  if (probe.status !== 0) {
    log(`the JPEG decoder built but does not load (${probe.stderr.trim().split('\n')[0]}); ${FALLBACK}`);
    return;
  }
  log('built native/jpeg-decode: JPEGs that shrink or enlarge up to 2x are decoded with libjpeg-turbo\'s DCT scaling');
}

main();
