#!/usr/bin/env node
// Makes @tensorflow/tfjs-node's native binding usable after `npm ci`, with or without internet.
//
// npm blocks the package's own install script (see "allowScripts" in package.json) because it crashes
// the whole install when storage.googleapis.com is unreachable. This script runs it under our control:
//   1. binding already loads                         -> nothing to do
//   2. tfjs-node's own installer (downloads libtensorflow + prebuilt addon), bounded in time
//   3. libtensorflow from the tensorflow-cpu wheel that pip fetches, then compile the addon from source
//   4. otherwise leave it: catdog falls back to @tensorflow/tfjs + wasm and says so at start-up.
// It never fails the install: a missing native backend is a slower catdog, not a broken one.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { localNodeHeaders } from './node-headers.mjs';

const TENSORFLOW_WHEEL = process.env.CATDOG_TENSORFLOW_WHEEL_SPEC ?? 'tensorflow-cpu==2.21.0';
const DOWNLOAD_TIMEOUT_MS = Number(process.env.CATDOG_TF_DOWNLOAD_TIMEOUT_MS ?? 180_000);
const cacheRoot = process.env.CATDOG_CACHE_DIR ?? path.join(os.homedir(), '.cache', 'catdog');

const log = (message) => console.log(`[catdog setup-tensorflow] ${message}`);
const require = createRequire(import.meta.url);

function findTfjsNodeDir() {
  try {
    return path.dirname(require.resolve('@tensorflow/tfjs-node/package.json'));
  } catch {
    return undefined;
  }
}

function bindingLoads(tfjsNodeDir) {
  const probe = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(tfjsNodeDir)})`], {
    encoding: 'utf8',
    timeout: 120_000,
  });
  return probe.status === 0;
}

function run(command, args, options) {
  const result = spawnSync(command, args, { stdio: 'inherit', ...options });
  return result.status === 0 && !result.error;
}

function tryOwnInstaller(tfjsNodeDir) {
  if (process.env.CATDOG_TF_SKIP_DOWNLOAD === '1') return false;
  log('trying the libtensorflow download of @tensorflow/tfjs-node');
  return run(process.execPath, ['scripts/install.js'], { cwd: tfjsNodeDir, timeout: DOWNLOAD_TIMEOUT_MS });
}

function findPython() {
  for (const candidate of ['python3', 'python']) {
    if (spawnSync(candidate, ['--version']).status === 0) return candidate;
  }
  return undefined;
}

/** Extracts libtensorflow (shared libraries + C headers) from the pip wheel into a version-keyed cache. */
function libtensorflowFromWheel(python) {
  const wheelDir = path.join(cacheRoot, 'wheels');
  const extractDir = path.join(cacheRoot, `libtensorflow-${TENSORFLOW_WHEEL.replace(/[^\w.]+/g, '-')}`);
  const doneMarker = path.join(extractDir, '.complete');
  if (fs.existsSync(doneMarker)) return extractDir;

  fs.mkdirSync(wheelDir, { recursive: true });
  let wheel = fs.readdirSync(wheelDir).find((name) => name.startsWith('tensorflow_cpu-') && name.endsWith('.whl'));
  if (!wheel) {
    log(`fetching the ${TENSORFLOW_WHEEL} wheel with pip`);
    if (!run(python, ['-m', 'pip', 'download', '--no-deps', '--only-binary=:all:', TENSORFLOW_WHEEL, '-d', wheelDir])) return undefined;
    wheel = fs.readdirSync(wheelDir).find((name) => name.startsWith('tensorflow_cpu-') && name.endsWith('.whl'));
    if (!wheel) return undefined;
  }
  log(`extracting libtensorflow from ${wheel}`);
  fs.rmSync(extractDir, { recursive: true, force: true });
  const extractScript = `
import sys, zipfile, os, shutil
wheel, out = sys.argv[1], sys.argv[2]
# The C API headers and the few headers they include from elsewhere in the tree.
C_API_HEADERS = tuple('tensorflow/include/' + prefix for prefix in (
    'tensorflow/c/', 'xla/tsl/c/', 'tsl/platform/ctstring', 'tensorflow/core/platform/ctstring'))
with zipfile.ZipFile(wheel) as z:
    for info in z.infolist():
        name = info.filename
        if name in ('tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'):
            target = os.path.join(out, 'lib', os.path.basename(name))
        elif name.startswith(C_API_HEADERS) and not name.endswith('/'):
            target = os.path.join(out, 'include', name[len('tensorflow/include/'):])
        else:
            continue
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with z.open(info) as src, open(target, 'wb') as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
`;
  if (!run(python, ['-c', extractScript, path.join(wheelDir, wheel), extractDir])) return undefined;
  fs.writeFileSync(doneMarker, `${wheel}\n`);
  return extractDir;
}

function linkOrCopy(source, target) {
  fs.rmSync(target, { force: true });
  try {
    fs.linkSync(source, target);
  } catch {
    fs.copyFileSync(source, target);
  }
}

function buildAgainstWheel(tfjsNodeDir) {
  const python = findPython();
  if (!python) {
    log('no python3 found, so the tensorflow-cpu wheel cannot be fetched');
    return false;
  }
  const extracted = libtensorflowFromWheel(python);
  if (!extracted) return false;

  const depsDir = path.join(tfjsNodeDir, 'deps');
  const libDir = path.join(depsDir, 'lib');
  fs.rmSync(depsDir, { recursive: true, force: true });
  fs.mkdirSync(libDir, { recursive: true });
  fs.cpSync(path.join(extracted, 'include'), path.join(depsDir, 'include'), { recursive: true });
  for (const library of ['libtensorflow_cc.so.2', 'libtensorflow_framework.so.2']) {
    linkOrCopy(path.join(extracted, 'lib', library), path.join(libDir, library));
  }
  // binding.gyp links `-ltensorflow -ltensorflow_framework`; the wheel's C API lives in libtensorflow_cc.
  fs.symlinkSync('libtensorflow_cc.so.2', path.join(libDir, 'libtensorflow.so'));
  fs.symlinkSync('libtensorflow_framework.so.2', path.join(libDir, 'libtensorflow_framework.so'));

  log('compiling the tfjs-node addon against the wheel\'s libtensorflow');
  const preGyp = require.resolve('@mapbox/node-pre-gyp/bin/node-pre-gyp', { paths: [tfjsNodeDir] });
  const built = run(process.execPath, [preGyp, 'install', '--build-from-source'], {
    cwd: tfjsNodeDir,
    env: { ...process.env, ...localNodeHeaders() },
  });
  if (built) fs.writeFileSync(path.join(depsDir, 'catdog-source.txt'), `${TENSORFLOW_WHEEL} wheel\n`);
  return built;
}

function main() {
  const tfjsNodeDir = findTfjsNodeDir();
  if (!tfjsNodeDir) {
    log('@tensorflow/tfjs-node is not installed; catdog will use @tensorflow/tfjs + wasm');
    return;
  }
  if (bindingLoads(tfjsNodeDir)) {
    log('native TensorFlow binding already works');
    return;
  }
  if (tryOwnInstaller(tfjsNodeDir) && bindingLoads(tfjsNodeDir)) {
    log('native TensorFlow installed from its published download');
    return;
  }
  if (buildAgainstWheel(tfjsNodeDir) && bindingLoads(tfjsNodeDir)) {
    log(`native TensorFlow built from the ${TENSORFLOW_WHEEL} wheel`);
    return;
  }
  log('WARNING: native TensorFlow could not be installed; catdog will run on @tensorflow/tfjs + wasm (slower). ' +
    'Re-run `node scripts/setup-tensorflow.mjs` once internet or pip is available.');
}

main();
