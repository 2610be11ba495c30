#!/usr/bin/env node
// Issue 5 "Load": `catdog serve` on embedded defaults (SQLite, local blobs, MobileNet v1 0.75) serving a promoted
// model trained first on `trainPerClass` kaggle-dev photos per class (0: the zero-shot fallback), then `clients`
// concurrent clients (closedLoopLoad: keep-alive fetch loops) each posting the next real full-size photo as soon as
// its previous answer arrived: `warmup` seconds, then `seconds` measured. Both phases end once the requests in
// flight are answered, so the scrapes at warm-up end and at the end see an idle server; /metrics is also scraped
// every `sampleEvery` seconds during the measured phase (RSS, TensorFlow tensors, model-call sizes).
// Every client has its own viewer token, as separate users would: the rate limit (server.rateLimit, default 1200
// requests/min per token) stays at its default, and a client here asks for a few per second at most.
// Not part of `npm run bench` (it would push the suite past its 15 minutes). Writes docs/bench/load.json, .png and
// the `bench:load` section of docs/benchmarks.md; exits 1 when a target of issue 5 is missed.
// With `--attackers N` (issue 14) it measures instead the same `clients` three times in one run: alone, then while
// one attacker with its own viewer token keeps N requests in flight, each a progressive scan bomb
// (test/support/jpeg-scan-bomb.mjs: 4,992² pixels in 2,647 valid scans, ~30 s of CPU to decode), then alone again;
// the result is the ratio of the clients' p99 latencies beside the attacker and alone (the slower run alone), target
// ≤ 2, with what the attacker's requests got (2xx, refused, 429). Writes docs/bench/load-attack.json and the
// `bench:load-attack` section instead.
// Backbones are catalogue names read from ../shared/models (training.backboneDir): the default preset's, or those of
// `--preset NAME`. The attack-free run also measures the preset's backbone alone (bench/backbone-throughput.mjs,
// batch 32, decode excluded) in the same run, before the server starts, and reports the ratio issue 16 sets (≥ 0.8).
// Usage: node bench/load.mjs [--seconds 60] [--warmup 60] [--clients 50] [--trainPerClass 50] [--sampleEvery 5] [--attackers 0] [--preset fast|balanced|best]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  catdogEnv,
  closedLoopLoad,
  fullResPhotos,
  kagglePhotoFolder,
  loadAverage,
  machine,
  MULTIPART_CONTENT_TYPE,
  multipartBody,
  options,
  peakRssMiB,
  peersPython,
  plotFigure,
  replaceBenchmarkSection,
  repoRoot,
  requireShared,
  runJson,
  runMeasured,
  startServe,
} from './lib.mjs';

const opts = options({ seconds: 60, warmup: 60, clients: 50, trainPerClass: 50, sampleEvery: 5, attackers: 0, preset: '' });
requireShared();
const python = opts.attackers > 0 ? undefined : peersPython();
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const { loadConfig } = await import(path.join(repoRoot, 'dist', 'config', 'index.js'));

/** The batcher's default cap (`maxBatch` in src/serving/batcher.ts): the largest model call the server makes. */
const FULL_BATCH = 32;
const photos = fullResPhotos();
const bodies = photos.map((photo) => multipartBody([photo]));
/** The photos in turn from the first: each run of clients sends the same sequence. */
const photosInTurn = () => {
  let next = 0;
  return () => bodies[next++ % bodies.length];
};

/** The value of one series of a Prometheus text exposition (`name{labels} value`), or NaN when absent. */
function metric(text, series) {
  const line = text.split('\n').find((candidate) => candidate.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : Number.NaN;
}

async function scrape(base, token) {
  const response = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } });
  if (!response.ok) throw new Error(`/metrics answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
  const text = await response.text();
  const buckets = Object.fromEntries(
    [...text.matchAll(/^catdog_model_batch_size_bucket\{le="([^"]+)"\} (\d+)$/gm)].map(([, le, count]) => [le, Number(count)]),
  );
  const modelCalls = metric(text, 'catdog_model_batch_size_count');
  return {
    rssMiB: metric(text, 'process_resident_memory_bytes') / 2 ** 20,
    tensors: metric(text, 'catdog_tf_tensors'),
    modelCalls,
    photos: metric(text, 'catdog_model_batch_size_sum'),
    buckets,
    // The smallest bucket holding every call so far: memory steps up when a larger model call first happens.
    largestBatchUpTo: Object.entries(buckets).find(([, count]) => count === modelCalls)?.[0],
  };
}

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-load-'));
const home = path.join(work, 'home');
const env = catdogEnv(home, opts.preset);
const started = Date.now();
const loadBefore = loadAverage();
let server;
let outcome;
const preset = loadConfig({ env: { ...env, CATDOG_HOME: home }, cwd: home }).config.training.preset;
const backboneAlone = opts.attackers > 0
  ? undefined
  : runJson(process.execPath, [path.join(repoRoot, 'bench', 'backbone-throughput.mjs'), '--preset', preset, '--seconds', '20']);
try {
  let trained;
  if (opts.trainPerClass > 0) {
    process.stderr.write(`load: training on ${opts.trainPerClass} photos per class…\n`);
    const result = runMeasured(process.execPath, [cli, 'train', '--data', kagglePhotoFolder(path.join(work, 'photos'), opts.trainPerClass), '--json'], { env });
    if (!result.promotion.promoted) throw new Error(`the trained model was not promoted: ${result.promotion.reason}`);
    trained = { modelId: result.modelId, testAccuracy: result.metrics.accuracy, testPhotos: result.metrics.count };
  }

  const clientNames = Array.from({ length: opts.clients }, (_, i) => `load client ${i + 1}`);
  const tokenNames = ['load monitor', 'load attacker', ...clientNames];
  server = await startServe(env, { tokens: Object.fromEntries(tokenNames.map((name) => [name, 'viewer'])) });
  const { base, servingModelId } = server;
  if (trained && servingModelId !== trained.modelId) throw new Error(`serving ${servingModelId}, not the trained ${trained.modelId}`);
  const { 'load monitor': monitor, 'load attacker': attackerToken } = server.tokens;
  const clientTokens = clientNames.map((name) => server.tokens[name]);

  // The warm-up starts with one full-size model call, so the memory such a call takes is held before the measured
  // window rather than taken whenever enough requests first coincide in it.
  const primer = await fetch(`${base}/api/v1/predictions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${monitor}`, 'content-type': MULTIPART_CONTENT_TYPE },
    body: multipartBody(photos.slice(0, FULL_BATCH)),
  });
  if (!primer.ok) throw new Error(`a request of ${FULL_BATCH} photos answered ${primer.status}: ${(await primer.text()).slice(0, 300)}`);
  await primer.arrayBuffer();

  if (opts.attackers > 0) {
    outcome = await attackComparison(base, clientTokens, attackerToken, trained, servingModelId);
  } else {
    process.stderr.write(`load: ${opts.clients} clients, ${opts.warmup} s warm-up then ${opts.seconds} s measured…\n`);
    // Under load throughout (no pause at the warm-up's end, which would let keep-alive connections idle out and
    // restart all clients in one burst); each reading is taken while the clients are busy, the last one idle.
    const loadStarted = performance.now();
    const total = opts.warmup + opts.seconds;
    const every = Array.from({ length: Math.floor(total / opts.sampleEvery) }, (_, i) => (i + 1) * opts.sampleEvery);
    const times = [...new Set([...every, opts.warmup, total])].sort((a, b) => a - b);
    // Failures are kept, not thrown, until the load is over: a rejection nobody awaits yet would end the process.
    const readings = times.map((seconds) =>
      sleep(seconds * 1000).then(() => scrape(base, monitor)).then(
        (reading) => ({ at: (performance.now() - loadStarted) / 1000, nominal: seconds, ...reading }),
        (error) => ({ nominal: seconds, error }),
      ),
    );
    const measured = await closedLoopLoad({
      url: `${base}/api/v1/predictions`,
      clientHeaders: clientTokens.map((token) => ({ authorization: `Bearer ${token}`, 'content-type': MULTIPART_CONTENT_TYPE })),
      nextBody: photosInTurn(),
      warmupSeconds: opts.warmup,
      seconds: opts.seconds,
    });
    const samples = await Promise.all(readings);
    const failedScrape = samples.find((reading) => reading.error);
    if (failedScrape) throw new Error(`the scrape at ${failedScrape.nominal} s failed: ${failedScrape.error.message}`);
    const warm = samples.find((reading) => reading.nominal === opts.warmup);
    const end = samples.find((reading) => reading.nominal === total);
    const idle = await scrape(base, monitor);

    const afterWarmUp = samples.filter((reading) => reading.nominal >= opts.warmup);
    const modelCalls = idle.modelCalls - warm.modelCalls;
    const photosPredicted = idle.photos - warm.photos;
    const tensorsAfterWarmUp = [...afterWarmUp, idle].map((reading) => reading.tensors);
    outcome = {
      figure: 'load',
      title: `8. Load: ${opts.clients} concurrent clients for ${opts.seconds} s`,
      machine: machine(),
      unit: 'MiB (RSS) / count (tensors)',
      what: `${opts.clients} keep-alive clients (fetch loops), each with its own viewer token, posting the ${bodies.length} kaggle-fullres-sample photos in turn to \`catdog serve\` on embedded defaults (preset \`${preset}\`: ${trained ? `a model trained on ${opts.trainPerClass} kaggle-dev photos per class, promoted` : 'zero-shot'}); ${opts.warmup} s warm-up (after one request of ${FULL_BATCH} photos, the largest model call), then ${opts.seconds} s measured, continuously (no pause between them), /metrics scraped every ${opts.sampleEvery} s`,
      command: `node bench/load.mjs${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
      servingModelId,
      trained,
      warmUp: measured.warmUp,
      answered: measured.answered,
      errors: measured.errors,
      non2xx: measured.non2xx,
      failureSamples: measured.failureSamples,
      measuredSeconds: measured.measuredSeconds,
      answeredPerSecond: measured.answered / measured.measuredSeconds,
      preset,
      backboneAlone: { photosPerSecond: backboneAlone.photosPerSecond, batch: backboneAlone.batch, inputSize: backboneAlone.inputSize, backbones: backboneAlone.backbones },
      photosPerSecondVsBackbone: measured.answered / measured.measuredSeconds / backboneAlone.photosPerSecond,
      latencyMs: { p50: measured.p50, p99: measured.p99, mean: measured.mean, max: measured.max },
      rssMiB: {
        warmUpEnd: warm.rssMiB,
        end: end.rssMiB,
        growthPercent: ((end.rssMiB - warm.rssMiB) / warm.rssMiB) * 100,
        idleAfter: idle.rssMiB,
        peak: peakRssMiB(server.server.pid),
      },
      tensors: { warmUpEnd: warm.tensors, min: Math.min(...tensorsAfterWarmUp), max: Math.max(...tensorsAfterWarmUp), idleAfter: idle.tensors },
      modelCalls,
      meanBatchSize: photosPredicted / modelCalls,
      modelCallsByBatchSize: callsByBatchSize(warm.buckets, idle.buckets),
      samples: samples.map(({ nominal, at, rssMiB, tensors, largestBatchUpTo }) => ({ nominal, at, rssMiB, tensors, largestBatchUpTo })),
      chart: 'line',
      rows: [...samples, { ...idle, nominal: 'idle after' }].flatMap((reading) => {
        const group = reading.nominal === opts.warmup ? `${reading.nominal} s (warm-up end)` : typeof reading.nominal === 'number' ? `${reading.nominal} s` : reading.nominal;
        return [
          { group, impl: 'server RSS (MiB)', value: reading.rssMiB },
          { group, impl: 'tf.memory().numTensors', value: reading.tensors },
        ];
      }),
    };
  }
} finally {
  await server?.stop();
  fs.rmSync(work, { recursive: true, force: true });
}

/** Model calls per batch-size range in the measured window, from the cumulative histogram buckets before and after. */
function callsByBatchSize(before, after) {
  const bounds = Object.keys(after);
  const cumulative = bounds.map((le) => after[le] - (before[le] ?? 0));
  return Object.fromEntries(
    bounds.map((le, i) => {
      const from = i === 0 ? 1 : Number(bounds[i - 1]) + 1;
      const range = le === '+Inf' ? `> ${bounds[i - 1]}` : from === Number(le) ? le : `${from}–${le}`;
      return [range, cumulative[i] - (cumulative[i - 1] ?? 0)];
    }),
  );
}

outcome.loadBefore = loadBefore;
outcome.loadAfter = loadAverage();
outcome.date = new Date().toISOString();
outcome.wallSeconds = (Date.now() - started) / 1000;
const benchDocs = path.join(repoRoot, 'docs', 'bench');
if (outcome.figure === 'load-attack') {
  outcome.targets = {
    'no errors for the clients': [outcome.alone, outcome.attacked, outcome.aloneAgain].every((run) => run.errors + run.non2xx === 0),
    "the clients' p99 under attack within 2× of alone": outcome.p99Ratio <= 2,
  };
  fs.writeFileSync(path.join(benchDocs, 'load-attack.json'), `${JSON.stringify(outcome, null, 2)}\n`);
  replaceBenchmarkSection('load-attack', attackSection(outcome));
  console.log(JSON.stringify({ figure: outcome.figure, p99Ratio: outcome.p99Ratio, targets: outcome.targets }));
} else {
  outcome.targets = {
    'no errors': outcome.errors + outcome.non2xx + outcome.warmUp.errors + outcome.warmUp.non2xx === 0,
    'tf tensors constant after warm-up': outcome.tensors.min === outcome.tensors.max,
    'RSS growth under 10%': outcome.rssMiB.growthPercent < 10,
    'more than one photo per model call': outcome.meanBatchSize > 1,
    "photos/s at least 0.8× the backbone's own at batch 32": outcome.photosPerSecondVsBackbone >= 0.8,
  };
  const jsonFile = path.join(benchDocs, 'load.json');
  fs.writeFileSync(jsonFile, `${JSON.stringify(outcome, null, 2)}\n`);
  plotFigure(python, jsonFile, path.join(benchDocs, 'load.png'));
  replaceBenchmarkSection('load', section(outcome));
  console.log(JSON.stringify({ figure: 'load', answered: outcome.answered, errors: outcome.errors, non2xx: outcome.non2xx, targets: outcome.targets }));
}
const missed = Object.entries(outcome.targets).filter(([, met]) => !met).map(([target]) => target);
if (missed.length > 0) {
  process.stderr.write(`load: missed ${missed.join('; ')}\n`);
  process.exitCode = 1;
}

/**
 * The clients' latencies alone, then beside the attacker keeping `opts.attackers` scan bombs in flight, then alone
 * again, one after the other on the same server: each run `opts.warmup` s of warm-up then `opts.seconds` s
 * measured, the same clients sending the same photos in the same order. The second run alone shows how much the
 * machine drifted meanwhile (other work, a warmer server); the ratio is taken against the slower of the two alone.
 */
async function attackComparison(base, clientTokens, attackerToken, trained, servingModelId) {
  const url = `${base}/api/v1/predictions`;
  const clients = () =>
    closedLoopLoad({
      url,
      clientHeaders: clientTokens.map((token) => ({ authorization: `Bearer ${token}`, 'content-type': MULTIPART_CONTENT_TYPE })),
      nextBody: photosInTurn(),
      warmupSeconds: opts.warmup,
      seconds: opts.seconds,
    });
  const phaseText = `${opts.warmup} s warm-up then ${opts.seconds} s measured`;
  process.stderr.write(`load: ${opts.clients} clients alone, ${phaseText}…\n`);
  const alone = await clients();
  process.stderr.write(`load: the same beside an attacker process keeping ${opts.attackers} scan bombs in flight…\n`);
  const attackerArgs = ['--url', url, '--token', attackerToken, '--inFlight', String(opts.attackers), '--warmup', String(opts.warmup), '--seconds', String(opts.seconds)];
  const [attacked, attacker] = await Promise.all([clients(), jsonOfProcess(path.join(repoRoot, 'bench', 'scan-bomb-attacker.mjs'), attackerArgs)]);
  process.stderr.write(`load: the clients alone again, ${phaseText}…\n`);
  const aloneAgain = await clients();
  const phase = (run) => ({
    answered: run.answered,
    errors: run.errors,
    non2xx: run.non2xx,
    failureSamples: run.failureSamples,
    latencyMs: { p50: run.p50, p95: run.p95, p99: run.p99, max: run.max },
  });
  // The attacker's whole run, warm-up included: its token's bucket starts full at the warm-up.
  const attackerStatus = (status) => (attacker.byStatus[status] ?? 0) + (attacker.warmUp.byStatus[status] ?? 0);
  const attackerNon2xx = attacker.non2xx + attacker.warmUp.non2xx;
  return {
    figure: 'load-attack',
    title: `8b. Load under attack: ${opts.clients} clients beside one attacker posting progressive scan bombs`,
    machine: machine(),
    what: `${opts.clients} keep-alive clients, each with its own viewer token, posting kaggle-fullres-sample photos (the same ones in the same order in every run) to \`catdog serve\` on embedded defaults (${trained ? `a model trained on ${opts.trainPerClass} kaggle-dev photos per class` : 'zero-shot MobileNet v1 0.75'}, serving ${servingModelId}), alone, then beside one attacker (its own viewer token) keeping ${opts.attackers} requests of one ${attacker.bodyBytes}-byte progressive scan bomb each in flight (from a process of its own) without heeding Retry-After, then alone again; each run ${phaseText}`,
    command: `node bench/load.mjs${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    alone: phase(alone),
    attacked: phase(attacked),
    aloneAgain: phase(aloneAgain),
    attacker: {
      answered2xx: attacker.answered + attacker.warmUp.answered,
      refused: attackerNon2xx - attackerStatus(429),
      rateLimited: attackerStatus(429),
      errors: attacker.errors + attacker.warmUp.errors,
      failureSamples: attacker.failureSamples,
    },
    p99Ratio: attacked.p99 / Math.max(alone.p99, aloneAgain.p99),
    p99RatioToFirstAlone: attacked.p99 / alone.p99,
  };
}

/** Runs a Node script to its end and returns the JSON line it printed last; its stderr goes to ours. */
function jsonOfProcess(script, args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
    let stdout = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve(JSON.parse(stdout.trim().split('\n').at(-1))) : reject(new Error(`${script} exited with ${code}`))));
  });
}

function attackSection(result) {
  const ms = (value) => value.toLocaleString('en-US', { maximumFractionDigits: 0 });
  const met = (name) => (result.targets[name] ? 'met' : '**missed**');
  const row = (name, run) =>
    `| ${name} | ${run.answered} | ${run.errors} / ${run.non2xx} | ${ms(run.latencyMs.p50)} / ${ms(run.latencyMs.p95)} / ${ms(run.latencyMs.p99)} / ${ms(run.latencyMs.max)} ms |`;
  const { attacker } = result;
  return [
    `## ${result.title}`,
    '',
    `\`${result.command}\`: ${result.what}. Machine: ${result.machine}.`,
    `Load average (1/5/15 min) before ${result.loadBefore.join(' / ')}, after ${result.loadAfter.join(' / ')}. Measured ${result.date.slice(0, 16).replace('T', ' ')} UTC, ${result.wallSeconds.toFixed(0)} s in all.`,
    '',
    '| clients | answered 2xx | errors / non-2xx | latency p50 / p95 / p99 / max |',
    '|---|---:|---:|---:|',
    row('alone', result.alone),
    row('beside the attacker', result.attacked),
    row('alone again', result.aloneAgain),
    '',
    `p99 beside the attacker / alone (the slower of the two runs alone): **${result.p99Ratio.toFixed(2)}×** (target ≤ 2×: ${met("the clients' p99 under attack within 2× of alone")}; against the first run alone ${result.p99RatioToFirstAlone.toFixed(2)}×). ` +
      `The attacker's requests (warm-up included): ${attacker.answered2xx} answered 2xx, ${attacker.refused} refused as photos, ${attacker.rateLimited} rate-limited (429)${attacker.failureSamples.length > 0 ? ` (first refusal: \`${attacker.failureSamples[0].replaceAll('|', '/').replaceAll('`', "'").slice(0, 160)}\`)` : ''}, ${attacker.errors} network errors.`,
  ].join('\n');
}

function section(result) {
  const number = (value, digits = 0) => value.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
  const met = (name) => (result.targets[name] ? 'met' : '**missed**');
  const underLoad = Math.max(result.loadBefore[0], result.loadAfter[0]) > 2.5;
  const batches = Object.entries(result.modelCallsByBatchSize)
    .filter(([, count]) => count > 0)
    .map(([range, count]) => `${range}: ${count}`)
    .join(', ');
  return [
    `## ${result.title}`,
    '',
    `\`${result.command}\`: ${result.what}. Machine: ${result.machine}.`,
    `Load average (1/5/15 min) before ${result.loadBefore.join(' / ')}, after ${result.loadAfter.join(' / ')}${underLoad ? ': **taken under load** (other work shared the 2 cores), so latency and throughput are low' : ''}.`,
    `Measured ${result.date.slice(0, 16).replace('T', ' ')} UTC, ${result.wallSeconds.toFixed(0)} s in all${result.trained ? ` (the model: test accuracy ${(result.trained.testAccuracy * 100).toFixed(1)}% on ${result.trained.testPhotos} photos)` : ''}.`,
    '',
    '| | measured | target |',
    '|---|---:|---|',
    `| requests answered 2xx (sent after the warm-up) | ${number(result.answered)} in ${number(result.measuredSeconds, 1)} s (${number(result.answeredPerSecond, 1)}/s) | |`,
    `| network errors / non-2xx answers | ${result.errors} / ${result.non2xx} (warm-up: ${result.warmUp.errors} / ${result.warmUp.non2xx}, ${number(result.warmUp.answered)} answered)${result.failureSamples.length > 0 ? `; first: ${result.failureSamples.map((text) => `\`${text.replaceAll('|', '/').replaceAll('`', "'")}\``).join(', ')}` : ''} | 0: ${met('no errors')} |`,
    `| latency p50 / p99 / max | ${number(result.latencyMs.p50)} / ${number(result.latencyMs.p99)} / ${number(result.latencyMs.max)} ms | recorded |`,
    `| server RSS at warm-up end → end (both under load) | ${number(result.rssMiB.warmUpEnd)} → ${number(result.rssMiB.end)} MiB (${result.rssMiB.growthPercent >= 0 ? '+' : ''}${number(result.rssMiB.growthPercent, 1)}%); idle after ${number(result.rssMiB.idleAfter)}, peak ${number(result.rssMiB.peak)} MiB | growth < 10%: ${met('RSS growth under 10%')} |`,
    `| \`tf.memory().numTensors\` after warm-up | ${result.tensors.min === result.tensors.max ? result.tensors.min : `${result.tensors.min}–${result.tensors.max}`} in every scrape from the warm-up's end on (idle after: ${result.tensors.idleAfter}) | constant: ${met('tf tensors constant after warm-up')} |`,
    `| photos/s answered vs preset \`${result.preset}\`'s backbone alone (${result.backboneAlone.backbones.join(' + ')} at ${result.backboneAlone.inputSize} px, batch ${result.backboneAlone.batch}, decode excluded, same run: ${number(result.backboneAlone.photosPerSecond, 1)}/s) | ${number(result.photosPerSecondVsBackbone, 2)}× | ≥ 0.8× (issue 16): ${met("photos/s at least 0.8× the backbone's own at batch 32")} |`,
    `| photos per model call (micro-batching) | ${number(result.meanBatchSize, 2)} on average over ${number(result.modelCalls)} calls (calls by photos per call: ${batches}) | > 1: ${met('more than one photo per model call')} |`,
    '',
    `![${result.title}](bench/load.png)`,
  ].join('\n');
}
