#!/usr/bin/env node
// Figure 5: HTTP serving, predictions/s and p50/p99 latency at 1, 8 and 32 concurrent clients: `catdog serve`
// (embedded defaults: zero-shot MobileNet v1 0.75 before any training; each answer also stores the photo and a
// prediction row) vs a minimal Flask + Keras server (bench/peers/flask_server.py: decode, forward pass, answer).
// Each server is pinned to core 0 (`taskset -c 0`) and the load generator (a fetch loop in this process) to
// core 1. Loopback only, bounded duration per level. Peak RSS: the server's VmHWM.
// Usage: node bench/serving.mjs [--seconds 10] [--rounds 1]
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { closedLoopLoad, freePort, interleavedAsync, loadAverage, options, peakRssMiB, peersPython, repoRoot, report, requireShared, sharedDir, startServe, stopProcess, waitFor } from './lib.mjs';

const LEVELS = [1, 8, 32];
const opts = options({ seconds: 10, rounds: 1 });
requireShared();
const python = peersPython();
execFileSync('taskset', ['-pc', '1', String(process.pid)], { stdio: 'ignore' });

const photo = fs.readFileSync(path.join(sharedDir, 'data', 'kaggle-fullres-sample', 'cat', 'cat.1.jpg'));
const boundary = 'catdogbenchboundary';
const body = Buffer.concat([
  Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cat.1.jpg"\r\nContent-Type: image/jpeg\r\n\r\n`),
  photo,
  Buffer.from(`\r\n--${boundary}--\r\n`),
]);

/** Each server started in `home`, pinned to core 0, once its health check answers. */
const servers = {
  'catdog serve': async (home) => {
    const env = {
      ...process.env,
      CATDOG_HOME: home,
      CATDOG_BACKBONE_URL: path.join(sharedDir, 'models', 'mobilenet_v1_0.75_224', 'model.json'),
      // The per-client rate limit would measure itself, not the server.
      CATDOG_SERVER__RATE_LIMIT__REQUESTS_PER_MINUTE: '0',
      TF_CPP_MIN_LOG_LEVEL: '2',
    };
    // Predictions need the viewer role.
    const { base, server, tokens, stop } = await startServe(env, { tokens: { bench: 'viewer' }, cpus: '0' });
    return { pid: server.pid, predict: `${base}/api/v1/predictions`, headers: { authorization: `Bearer ${tokens.bench}` }, stop };
  },
  'Flask + Keras': async () => {
    const port = await freePort();
    const child = spawn('taskset', ['-c', '0', python, path.join(repoRoot, 'bench', 'peers', 'flask_server.py'), String(port)], {
      cwd: path.join(repoRoot, 'bench', 'peers'),
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2' },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    try {
      await waitFor(`http://127.0.0.1:${port}/health`, child);
    } catch (error) {
      await stopProcess(child);
      throw error;
    }
    return { pid: child.pid, predict: `http://127.0.0.1:${port}/predict`, headers: {}, stop: () => stopProcess(child) };
  },
};

/** `connections` clients, each posting the photo again as soon as its previous answer arrives, for `seconds`. */
async function load({ predict: url, headers }, connections, seconds) {
  const clientHeaders = Array.from({ length: connections }, () => ({ ...headers, 'content-type': `multipart/form-data; boundary=${boundary}` }));
  const result = await closedLoopLoad({ url, clientHeaders, nextBody: () => body, seconds });
  return { completed: result.answered, errors: result.errors + result.non2xx, p50: result.p50, p99: result.p99 };
}

async function measure(name) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-serve-'));
  let server;
  try {
    server = await servers[name](home);
    // Warm-up: the first predictions load the model and build TensorFlow's kernels.
    const warm = await load(server, 2, 3);
    if (warm.errors > 0) {
      const probe = await fetch(server.predict, { method: 'POST', headers: { ...server.headers, 'content-type': `multipart/form-data; boundary=${boundary}` }, body });
      throw new Error(`${name} answered ${probe.status}: ${(await probe.text()).slice(0, 300)}`);
    }
    const levels = [];
    for (const connections of LEVELS) {
      const result = await load(server, connections, opts.seconds);
      levels.push({
        connections,
        value: result.completed / opts.seconds,
        p50Ms: result.p50,
        p99Ms: result.p99,
        errors: result.errors,
      });
    }
    return { levels, peakRssMiB: peakRssMiB(server.pid) };
  } finally {
    await server?.stop();
    fs.rmSync(home, { recursive: true, force: true });
  }
}

const loadBefore = loadAverage();
const results = await interleavedAsync(Object.fromEntries(Object.keys(servers).map((name) => [name, () => measure(name)])), opts.rounds);
const rows = [];
for (const [impl, runs] of Object.entries(results)) {
  for (const [i, connections] of LEVELS.entries()) {
    const atLevel = runs.map((run) => run.levels[i]);
    const best = [...atLevel].sort((a, b) => b.value - a.value)[0];
    rows.push({ group: `${connections} client${connections > 1 ? 's' : ''}`, impl, ...best, values: atLevel.map((l) => l.value), peakRssMiB: Math.max(...runs.map((run) => run.peakRssMiB ?? 0)) });
  }
}
report('serving', {
  unit: 'predictions/s',
  what: `POST one ${Math.round(photo.length / 1024)} KiB JPEG per request, ${opts.seconds} s per level, server on core 0, load generator on core 1, best of ${opts.rounds} interleaved round(s)`,
  loadBefore,
  loadAfter: loadAverage(),
  rows,
});
