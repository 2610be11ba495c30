// Shared plumbing for the benchmark scripts: peers run as child processes, one at a time, on the same machine.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { register } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const sharedDir = path.resolve(process.env.CATDOG_SHARED ?? path.join(repoRoot, '..', 'shared'));

/**
 * The environment of a catdog process on embedded defaults in `home`, its backbones read by catalogue name from
 * ../shared/models, with training.preset `preset` ('' = the default one) and `extra` settings.
 */
export function catdogEnv(home, preset, extra = {}) {
  return {
    ...process.env,
    CATDOG_HOME: home,
    CATDOG_BACKBONE_DIR: path.join(sharedDir, 'models'),
    ...(preset && { CATDOG_TRAINING__PRESET: preset }),
    CATDOG_LOG_LEVEL: 'warn',
    TF_CPP_MIN_LOG_LEVEL: '2',
    ...extra,
  };
}

export function requireShared() {
  if (!fs.existsSync(path.join(sharedDir, 'README.md'))) {
    console.error(`bench: ../shared not found at ${sharedDir}; set CATDOG_SHARED`);
    process.exit(2);
  }
}

/** The venv that scripts/setup-python-venv.sh makes (tensorflow-cpu 2.21, keras 3.15). */
export function peerPython() {
  const venv = process.env.CATDOG_PY_VENV ?? path.join(os.homedir(), '.cache', 'catdog', 'py-venv');
  const python = path.join(venv, 'bin', 'python');
  if (!fs.existsSync(python)) {
    execFileSync('bash', [path.join(repoRoot, 'scripts', 'setup-python-venv.sh')], { stdio: ['ignore', 'ignore', 'inherit'] });
  }
  return python;
}

/** Runs a command that prints one JSON object as its last stdout line, and returns it. */
export function runJson(command, args, options = {}) {
  const result = spawnSync(command, args, {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...options.env },
    cwd: options.cwd ?? repoRoot,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr.slice(-3000)}`);
  }
  const lines = result.stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]);
}

export function machine() {
  const cpu = os.cpus()[0]?.model ?? 'unknown cpu';
  return `${os.cpus().length} × ${cpu}, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
}

export const ratio = (ours, theirs) => (theirs === 0 ? Infinity : ours / theirs);

/** The venv's python with the peers' extra packages (OpenCV, Pillow, Flask, PyTorch, matplotlib). */
export function peersPython() {
  const out = execFileSync('bash', [path.join(repoRoot, 'bench', 'setup-peers.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return out.trim().split('\n').at(-1);
}

/**
 * uint8 RGB pixels as float32 x/127.5 − 1, the scaling the Python peers apply with NumPy; catdog's models scale
 * inside the network, so the preprocessing figures scale here, the same on every side.
 */
export function normalisedPixels(pixels) {
  // Converted by the typed-array constructor (native), then scaled in place: a quarter faster than one JS loop doing both.
  const normalised = new Float32Array(pixels);
  for (let i = 0; i < normalised.length; i++) normalised[i] = normalised[i] / 127.5 - 1;
  return normalised;
}

/** 1, 5 and 15 minute load averages: the figures are only comparable with the load they were taken under. */
export function loadAverage() {
  return fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).map(Number);
}

/**
 * Runs a command that prints one JSON object as its last stdout line, under `/usr/bin/time` for its peak RSS.
 * Returns the JSON with `peakRssMiB` added.
 */
export function runMeasured(command, args, options = {}) {
  const marker = 'BENCH_PEAK_RSS_KB=';
  const result = spawnSync('/usr/bin/time', ['-f', `${marker}%M`, command, ...args], {
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
    env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', ...options.env },
    cwd: options.cwd ?? repoRoot,
  });
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (${result.status}):\n${result.stderr.slice(-3000)}`);
  }
  const rssLine = result.stderr.split('\n').find((line) => line.startsWith(marker));
  return { ...lastJson(result.stdout), peakRssMiB: rssLine ? Number(rssLine.slice(marker.length)) / 1024 : null };
}

/** The whole output when it is one (pretty-printed) JSON document, else its last line. */
function lastJson(stdout) {
  const text = stdout.trim();
  try {
    return JSON.parse(text);
  } catch {
    return JSON.parse(text.split('\n').at(-1));
  }
}

/**
 * Runs every contender `rounds` times, interleaved (A B A B …) so each sees the same background load, and keeps
 * each contender's best run (highest `value`, or lowest with `lowerIsBetter`): on a shared machine the best run is
 * the one least disturbed by other work. `contenders` maps a name to a function returning `{ value, … }`.
 */
export function interleaved(contenders, rounds, { lowerIsBetter = false } = {}) {
  const runs = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(contenders)) runs[name].push(run());
  }
  return Object.fromEntries(
    Object.entries(runs).map(([name, list]) => {
      const best = [...list].sort((a, b) => (lowerIsBetter ? a.value - b.value : b.value - a.value))[0];
      return [name, { ...best, values: list.map((run) => run.value), peakRssMiB: Math.max(...list.map((run) => run.peakRssMiB ?? 0)) }];
    }),
  );
}

/** The one JSON line every figure script prints. */
export function report(figure, fields) {
  console.log(JSON.stringify({ figure, machine: machine(), ...fields }));
}

/** `--name value` command-line options with defaults. */
export function options(defaults) {
  const parsed = { ...defaults };
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i]?.replace(/^--/, '');
    if (!key || !(key in defaults)) throw new Error(`unknown option ${argv[i]}; known: ${Object.keys(defaults).join(', ')}`);
    parsed[key] = typeof defaults[key] === 'number' ? Number(argv[i + 1]) : argv[i + 1];
  }
  return parsed;
}

/** `interleaved` for asynchronous contenders; returns every run of each contender, in order. */
export async function interleavedAsync(contenders, rounds) {
  const runs = Object.fromEntries(Object.keys(contenders).map((name) => [name, []]));
  for (let round = 0; round < rounds; round++) {
    for (const [name, run] of Object.entries(contenders)) runs[name].push(await run());
  }
  return runs;
}

/** A TCP port free on 127.0.0.1 right now. */
export async function freePort() {
  const server = net.createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** Polls `url` until it answers 2xx; fails early if the server process `child` exits. */
export async function waitFor(url, child, seconds = 240) {
  const deadline = Date.now() + seconds * 1000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode} before answering ${url}`);
    const ok = await fetch(url).then((response) => response.ok, () => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`${url} did not answer within ${seconds} s`);
}

/** The peak resident set (VmHWM) of a live process, in MiB. */
export function peakRssMiB(pid) {
  const line = fs.readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmHWM:'));
  return line ? Number(line.split(/\s+/)[1]) / 1024 : null;
}

/** `folder`/cat and `folder`/dog holding the first `perClass` kaggle-dev photos of each class, as symlinks (never copies). */
export function kagglePhotoFolder(folder, perClass) {
  for (const label of ['cat', 'dog']) {
    const source = path.join(sharedDir, 'data', 'kaggle-dev', label);
    const numbered = fs.readdirSync(source).map((name) => ({ name, n: Number(name.split('.')[1]) })).sort((a, b) => a.n - b.n);
    fs.mkdirSync(path.join(folder, label), { recursive: true });
    for (const { name } of numbered.slice(0, perClass)) fs.symlinkSync(path.join(source, name), path.join(folder, label, name));
  }
  return folder;
}

/** Draws a figure's JSON result as a bar chart (bench/plot.py; `python` is `peersPython()`, which has matplotlib). */
export function plotFigure(python, jsonFile, pngFile) {
  execFileSync(python, [path.join(repoRoot, 'bench', 'plot.py'), jsonFile, pngFile], { stdio: 'inherit' });
}

/**
 * Rewrites the block between `<!-- bench:<id> -->` and `<!-- /bench:<id> -->` of docs/benchmarks.md with `body`
 * (appends it when the markers are missing); the rest of the file is kept as it is.
 */
export function replaceBenchmarkSection(id, body) {
  const markdownFile = path.join(repoRoot, 'docs', 'benchmarks.md');
  const start = `<!-- bench:${id} -->`;
  const end = `<!-- /bench:${id} -->`;
  const block = `${start}\n${body}\n${end}`;
  let markdown = fs.existsSync(markdownFile) ? fs.readFileSync(markdownFile, 'utf8') : '# Benchmarks\n';
  const from = markdown.indexOf(start);
  const to = markdown.indexOf(end);
  markdown = from >= 0 && to > from ? markdown.slice(0, from) + block + markdown.slice(to + end.length) : `${markdown.trimEnd()}\n\n${block}\n`;
  fs.writeFileSync(markdownFile, markdown);
}

/** SIGTERMs `child` (a server this bench started) unless it has exited, and waits for its exit. */
export async function stopProcess(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGTERM');
  await new Promise((resolve) => (child.exitCode !== null || child.signalCode !== null ? resolve() : child.once('exit', resolve)));
}

/**
 * `catdog serve` (dist/) with `env` (see `catdogEnv`) in its CATDOG_HOME on a free port, once its health check
 * answers. `tokens` maps a token's name to its role ('viewer', 'curator' or 'admin'): each is made on the server's
 * database and returned as name → bearer secret. `cpus` (e.g. '0') pins the server with taskset. `stop()` SIGTERMs
 * it and waits for its exit (its worker child stops with it).
 */
export async function startServe(env, { tokens = {}, cpus } = {}) {
  const dist = (module) => import(path.join(repoRoot, 'dist', module));
  const [{ databaseUrl, loadConfig }, { openDatabase }, { createToken, parseRole }] = await Promise.all([dist('config/index.js'), dist('db/index.js'), dist('auth/index.js')]);
  // A misspelt role fails here, before a server is started for nothing.
  const roles = Object.entries(tokens).map(([name, role]) => [name, parseRole(role)]);
  const home = env.CATDOG_HOME;
  fs.mkdirSync(home, { recursive: true });
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const serve = [path.join(repoRoot, 'dist', 'cli', 'main.js'), 'serve', '--port', String(port)];
  const [command, args] = cpus === undefined ? [process.execPath, serve] : ['taskset', ['-c', cpus, process.execPath, ...serve]];
  const server = spawn(command, args, { env, cwd: home, stdio: ['ignore', 'ignore', 'inherit'] });
  const stop = () => stopProcess(server);
  try {
    await waitFor(`${base}/api/v1/health`, server);
    const { servingModelId } = await (await fetch(`${base}/api/v1/health`)).json();
    // The config the server read (same environment and folder), so the tokens land in its database.
    const db = await openDatabase(databaseUrl(loadConfig({ env, cwd: home }).config));
    const secrets = await Promise.all(roles.map(async ([name, role]) => [name, (await createToken(db, role, name)).secret])).finally(() => db.close());
    return { base, server, servingModelId, tokens: Object.fromEntries(secrets), stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** The kaggle-fullres-sample photos (full-size camera photos, cats then dogs) as `{ name, bytes }`. */
export function fullResPhotos() {
  const photoDir = path.join(sharedDir, 'data', 'kaggle-fullres-sample');
  return ['cat', 'dog'].flatMap((label) =>
    fs.readdirSync(path.join(photoDir, label)).map((name) => ({ name, bytes: fs.readFileSync(path.join(photoDir, label, name)) })),
  );
}

const MULTIPART_BOUNDARY = 'catdogbenchmultipart';
/** The Content-Type of `multipartBody`'s bodies. */
export const MULTIPART_CONTENT_TYPE = `multipart/form-data; boundary=${MULTIPART_BOUNDARY}`;

/** A multipart/form-data body with every `{ name, bytes }` as a `file` field, as `curl -F file=@…` sends them. */
export function multipartBody(files) {
  return Buffer.concat([
    ...files.flatMap(({ name, bytes }) => [
      Buffer.from(`--${MULTIPART_BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="${name}"\r\nContent-Type: image/jpeg\r\n\r\n`),
      bytes,
      Buffer.from('\r\n'),
    ]),
    Buffer.from(`--${MULTIPART_BOUNDARY}--\r\n`),
  ]);
}

/**
 * Closed-loop HTTP load: one client per entry of `clientHeaders`, each POSTing `nextBody()` to `url` again as soon
 * as its previous answer arrived, for `warmupSeconds` then `seconds` without a pause between them. Requests started
 * during the warm-up are tallied apart (`warmUp`). A request in flight at the deadline is waited for, so every
 * request sent is counted and the server is idle when this resolves. A fetch loop rather than autocannon:
 * autocannon completed only the first request per connection against Werkzeug (Flask's server), with keep-alive or
 * without, and it drops the requests in flight when its time is up.
 * Returns, for the measured requests: 2xx answers and their latencies (ms: p50, p95, p99, mean, max), non-2xx
 * answers (also by status: `byStatus`), network errors, up to 5 failure samples, and the seconds from the warm-up's
 * end until the last answer.
 */
export async function closedLoopLoad({ url, clientHeaders, nextBody, seconds, warmupSeconds = 0 }) {
  const started = performance.now();
  const measuredFrom = started + warmupSeconds * 1000;
  const deadline = measuredFrom + seconds * 1000;
  const latencies = [];
  const tally = () => ({ answered: 0, non2xx: 0, errors: 0, byStatus: {} });
  const warmUp = tally();
  const measured = tally();
  const failureSamples = [];
  const fail = (counts, kind, sample) => {
    counts[kind]++;
    if (failureSamples.length < 5) failureSamples.push(sample);
  };
  const client = async (headers) => {
    while (performance.now() < deadline) {
      const sent = performance.now();
      const counts = sent < measuredFrom ? warmUp : measured;
      try {
        const response = await fetch(url, { method: 'POST', headers, body: nextBody() });
        const text = await response.text();
        if (!response.ok) {
          counts.byStatus[response.status] = (counts.byStatus[response.status] ?? 0) + 1;
          fail(counts, 'non2xx', `${response.status} ${text.slice(0, 200)}`);
          continue;
        }
        counts.answered++;
        if (counts === measured) latencies.push(performance.now() - sent);
      } catch (error) {
        // fetch's own message is "fetch failed"; the reason (a reset, a refused connection) is its cause.
        const at = ((performance.now() - started) / 1000).toFixed(1);
        fail(counts, 'errors', `${error} (${error.cause?.code ?? error.cause?.message ?? 'no cause'}) at ${at} s, sent at ${((sent - started) / 1000).toFixed(1)} s`);
      }
    }
  };
  await Promise.all(clientHeaders.map(client));
  latencies.sort((a, b) => a - b);
  const percentile = (p) => latencies[Math.min(latencies.length - 1, Math.floor((p / 100) * latencies.length))] ?? null;
  return {
    ...measured,
    warmUp,
    failureSamples,
    measuredSeconds: (performance.now() - measuredFrom) / 1000,
    p50: percentile(50),
    p95: percentile(95),
    p99: percentile(99),
    max: latencies.at(-1) ?? null,
    mean: latencies.length > 0 ? latencies.reduce((sum, ms) => sum + ms, 0) / latencies.length : null,
  };
}

/**
 * Symlinks the first `perClass` kaggle-dev photos per class into `<work>/train/{cat,dog}` and lists every photo
 * numbered ≥ `heldOutFrom` (held out: never imported with a label), label 1 = dog.
 */
export function kaggleTrainAndHeldOut(work, perClass, heldOutFrom) {
  const trainDir = path.join(work, 'train');
  const heldOut = [];
  for (const label of ['cat', 'dog']) {
    const source = path.join(sharedDir, 'data', 'kaggle-dev', label);
    const numbered = fs.readdirSync(source).map((name) => ({ name, n: Number(name.split('.')[1]) })).sort((a, b) => a.n - b.n);
    fs.mkdirSync(path.join(trainDir, label), { recursive: true });
    for (const { name } of numbered.slice(0, perClass)) fs.symlinkSync(path.join(source, name), path.join(trainDir, label, name));
    for (const { name, n } of numbered) if (n >= heldOutFrom) heldOut.push({ file: path.join(source, name), name, label: label === 'dog' ? 1 : 0 });
  }
  return { trainDir, heldOut };
}

/**
 * catdog's TypeScript sources imported in this process (no build), through the type-stripping hooks the tests use:
 * for benches that drive the training path as the product runs it. Only the modules the accuracy benches share.
 */
export async function catdogSources() {
  register(pathToFileURL(path.join(repoRoot, 'test', 'support', 'typescript-hooks.mjs')).href);
  const src = (file) => import(pathToFileURL(path.join(repoRoot, 'src', file)).href);
  const [config, context, logger, folders, ingest, versions, training, params, classifier, artifacts, images, neither, ml] = await Promise.all(
    ['config/index.ts', 'app/context.ts', 'app/logger.ts', 'datasets/import-folder.ts', 'datasets/ingest.ts', 'datasets/versions.ts', 'training/run-training.ts', 'training/params.ts', 'registry/classifier.ts', 'registry/artifacts.ts', 'images/index.ts', 'serving/neither.ts', 'ml/index.ts'].map(src),
  );
  return {
    src,
    loadConfig: config.loadConfig,
    openApp: context.openApp,
    createLogger: logger.createLogger,
    importFolder: folders.importFolder,
    ingestImage: ingest.ingestImage,
    buildDatasetVersion: versions.buildDatasetVersion,
    loadManifest: versions.loadManifest,
    trainOnDataset: training.trainOnDataset,
    datasetParams: params.datasetParams,
    resolveTrainingParams: params.resolveTrainingParams,
    loadClassifier: classifier.loadClassifier,
    readModelFiles: artifacts.readModelFiles,
    decodeToRgb: images.decodeToRgb,
    neitherReason: neither.neitherReason,
    binaryMetrics: ml.binaryMetrics,
    expectedCalibrationError: ml.expectedCalibrationError,
  };
}
