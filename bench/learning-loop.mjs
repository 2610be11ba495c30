#!/usr/bin/env node
// Issue 16's learning loop from zero-shot: `catdog serve` on embedded defaults (the default preset, or --preset,
// backbones read from ../shared/models) with automatic retraining on (retraining.enabled, its default threshold of
// retraining.minNewValidated validations) and no model yet, so it answers zero-shot; `validations` kaggle-dev photos
// (the lowest-numbered, cats and dogs alternating) are each posted to /api/v1/predictions and validated with their
// true label through /api/v1/predictions/{id}/validation, as a curator would. When every retraining the validations
// started has ended, `catdog evaluate` scores the served model and zero-shot on `heldOutPerClass` kaggle-dev photos per
// class numbered >= 4000, which the loop never saw. The target: a promoted model whose held-out accuracy beats zero-shot's.
// Runs dist/ (npm run build first).
// Usage: node bench/learning-loop.mjs [--validations 220] [--heldOutPerClass 200] [--preset fast|balanced|best] [--timeoutSeconds 3600]
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { catdogEnv, loadAverage, machine, options, replaceBenchmarkSection, repoRoot, requireShared, sharedDir, startServe } from './lib.mjs';

const opts = options({ validations: 220, heldOutPerClass: 200, preset: '', timeoutSeconds: 3600 });
requireShared();
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const { loadConfig } = await import(path.join(repoRoot, 'dist', 'config', 'index.js'));

const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-loop-'));
const home = path.join(work, 'home');
const env = catdogEnv(home, opts.preset, { CATDOG_RETRAINING__ENABLED: 'true' });
const config = loadConfig({ env, cwd: home }).config;

const numbered = (label) =>
  fs.readdirSync(path.join(sharedDir, 'data', 'kaggle-dev', label)).map((name) => ({ name, label, n: Number(name.split('.')[1]), file: path.join(sharedDir, 'data', 'kaggle-dev', label, name) })).sort((a, b) => a.n - b.n);
const [cats, dogs] = [numbered('cat'), numbered('dog')];
const validated = Array.from({ length: opts.validations }, (_, i) => (i % 2 === 0 ? cats : dogs)[Math.floor(i / 2)]);
const heldOutDir = path.join(work, 'held-out');
for (const list of [cats, dogs]) {
  fs.mkdirSync(path.join(heldOutDir, list[0].label), { recursive: true });
  for (const photo of list.filter((item) => item.n >= 4000).slice(0, opts.heldOutPerClass)) fs.symlinkSync(photo.file, path.join(heldOutDir, photo.label, photo.name));
}

const evaluate = (model) => {
  const result = spawnSync(process.execPath, [cli, 'evaluate', '--data', heldOutDir, '--model', model, '--json'], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  if (result.status !== 0) throw new Error(`catdog evaluate --model ${model} failed with ${result.status}`);
  const { accuracy, count, modelId } = JSON.parse(result.stdout);
  return { modelId, accuracy, count };
};

const started = Date.now();
const loadBefore = loadAverage();
let server;
try {
  server = await startServe(env, { tokens: { 'learning loop': 'curator' } });
  const { base, tokens: { 'learning loop': token } } = server;
  const headers = { authorization: `Bearer ${token}` };
  const api = async (method, route, body) => {
    for (;;) {
      const response = await fetch(`${base}/api/v1${route}`, { method, headers: { ...headers, ...(body && !(body instanceof FormData) && { 'content-type': 'application/json' }) }, body: body instanceof FormData ? body : body && JSON.stringify(body) });
      // One curator's token is rate limited (server.rateLimit) like anyone's: wait as the answer says, as a client would.
      if (response.status === 429) {
        await response.arrayBuffer();
        await sleep(Number(response.headers.get('retry-after') ?? 1) * 1000);
        continue;
      }
      if (!response.ok) throw new Error(`${method} ${route} answered ${response.status}: ${(await response.text()).slice(0, 300)}`);
      return response.json();
    }
  };

  let zeroShotRight = 0;
  for (const photo of validated) {
    const form = new FormData();
    form.append('file', new Blob([fs.readFileSync(photo.file)], { type: 'image/jpeg' }), photo.name);
    const [prediction] = (await api('POST', '/predictions', form)).predictions;
    if (prediction.label === photo.label) zeroShotRight += 1;
    await api('POST', `/predictions/${prediction.id}/validation`, { label: photo.label });
  }
  process.stderr.write(`learning loop: ${validated.length} validations posted; waiting for retraining…\n`);

  // Retraining is a queue job started by the validations: wait until runs exist and none is queued or running.
  const deadline = Date.now() + opts.timeoutSeconds * 1000;
  let runs = [];
  while (Date.now() < deadline) {
    runs = (await api('GET', '/training-runs?limit=50')).items;
    if (runs.length > 0 && runs.every((run) => run.status !== 'queued' && run.status !== 'running')) break;
    await sleep(5000);
  }
  // The server learns of a promotion by polling the database: give it the time to load the promoted model.
  let { servingModelId } = await api('GET', '/health');
  const promotedBy = Date.now() + 60_000;
  while (servingModelId === 'zero-shot' && runs.some((run) => run.metrics?.promoted) && Date.now() < promotedBy) {
    await sleep(1000);
    ({ servingModelId } = await api('GET', '/health'));
  }
  if (servingModelId === 'zero-shot' && runs.some((run) => run.metrics?.promoted)) {
    await server.stop();
    throw new Error('a retraining promoted a model, but catdog serve still answered zero-shot 60 s later: the server did not load the promotion');
  }
  await server.stop();

  const zeroShot = evaluate('zero-shot');
  const served = servingModelId === 'zero-shot' ? undefined : evaluate('current');
  const outcome = {
    figure: 'learning-loop',
    machine: machine(),
    command: `node bench/learning-loop.mjs${process.argv.slice(2).length > 0 ? ` ${process.argv.slice(2).join(' ')}` : ''}`,
    preset: config.training.preset,
    validations: validated.length,
    retrainingAfter: config.retraining.minNewValidated,
    zeroShotRightWhileValidating: zeroShotRight,
    runs: runs.map((run) => ({ id: run.id, status: run.status, testAccuracy: run.metrics?.accuracy, promoted: run.metrics?.promoted, error: run.error ?? undefined })),
    servingModelId,
    heldOut: { zeroShot, served },
    target: { 'a promoted model beats zero-shot on the held-out photos': served !== undefined && served.accuracy > zeroShot.accuracy },
    loadBefore,
    loadAfter: loadAverage(),
    wallSeconds: (Date.now() - started) / 1000,
  };
  console.log(JSON.stringify(outcome));
  const pct = (value) => `${(value * 100).toFixed(2)}%`;
  const heldOutRow = (name, result) => `| ${name} | ${pct(result.accuracy)} | ${Math.round((1 - result.accuracy) * result.count)} of ${result.count} |`;
  replaceBenchmarkSection(
    'learning-loop',
    `## The learning loop from zero-shot (issue 16)

\`${outcome.command}\` (preset \`${outcome.preset}\`): \`catdog serve\` on embedded defaults with automatic retraining on and
no model; ${outcome.validations} kaggle-dev photos (the lowest-numbered, cats and dogs alternating) each posted to
\`POST /api/v1/predictions\` and validated with their true label as a curator would; a retraining after every
${outcome.retrainingAfter} validations. Runs: ${outcome.runs.map((run) => `${run.status}${run.promoted ? ', promoted' : ''} (test split ${run.testAccuracy === undefined ? 'n/a' : pct(run.testAccuracy)})`).join('; ')}.
Held-out kaggle-dev photos numbered ≥ 4000, never posted, scored by \`catdog evaluate\`:

| classifier | held-out accuracy | errors |
|---|---|---|
${heldOutRow('zero-shot (ImageNet classes of the backbone)', outcome.heldOut.zeroShot)}
${outcome.heldOut.served ? heldOutRow('the model the loop promoted', outcome.heldOut.served) : '| no model was promoted | | |'}

Target (a promoted model beats zero-shot): **${outcome.target['a promoted model beats zero-shot on the held-out photos'] ? 'met' : 'missed'}**. ${outcome.machine}; ${outcome.wallSeconds.toFixed(0)} s.`,
  );
  if (!outcome.target['a promoted model beats zero-shot on the held-out photos']) process.exitCode = 1;
} finally {
  // Its worker may still be reading the blob folder: remove it only once the server and its worker have stopped.
  await server?.stop();
  fs.rmSync(work, { recursive: true, force: true });
}
