// Issue 13's figure: how `catdog serve` answers while it trains. The built CLI serves on embedded defaults (its own
// worker process trains); health checks and predictions are timed idle, then while a CNN training started through the
// API runs. Prints p50/p99 of both and the ratios to idle, and writes the `bench:serving-during-training` section of
// docs/benchmarks.md; exits 1 when a target is missed (health p99 <= 100 ms, prediction p50 <= 2x idle).
//   node bench/serving-during-training.mjs [photosPerClass=150] [epochs=4]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { loadAverage, machine, ratio, replaceBenchmarkSection, repoRoot, requireShared, sharedDir, startServe } from './lib.mjs';

requireShared();
const perClass = Number(process.argv[2] ?? 150);
const epochs = Number(process.argv[3] ?? 4);
const cli = path.join(repoRoot, 'dist', 'cli', 'main.js');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-serving-'));
const env = {
  ...process.env,
  CATDOG_HOME: home,
  CATDOG_BACKBONE_URL: path.join(sharedDir, 'models', 'mobilenet_v1_0.75_224', 'model.json'),
  CATDOG_TRAINING__PRESET: 'fast',
  CATDOG_SERVER__LOCAL_VIEWER: 'false',
  CATDOG_LOG_LEVEL: 'warn',
};
const photos = (label, count, from) => fs.readdirSync(path.join(sharedDir, 'data', 'kaggle-dev', label))
  .filter((name) => Number(name.split('.')[1]) >= from)
  .sort((a, b) => Number(a.split('.')[1]) - Number(b.split('.')[1]))
  .slice(0, count)
  .map((name) => path.join(sharedDir, 'data', 'kaggle-dev', label, name));

function run(args) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [cli, ...args], { env, cwd: home });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`catdog ${args.join(' ')} exited ${code}`))));
  });
}

function percentile(values, p) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

const timed = async (request) => {
  const started = performance.now();
  const response = await request();
  await response.arrayBuffer();
  if (!response.ok) throw new Error(`HTTP ${response.status}`);
  return performance.now() - started;
};

async function sample(url, token, photo, keepGoing) {
  const health = [];
  const predictions = [];
  const body = () => {
    const form = new FormData();
    form.append('file', new Blob([fs.readFileSync(photo)]), path.basename(photo));
    return form;
  };
  while (await keepGoing()) {
    health.push(await timed(() => fetch(`${url}/api/v1/health`)));
    predictions.push(await timed(() => fetch(`${url}/api/v1/predictions`, { method: 'POST', body: body(), headers: { Authorization: `Bearer ${token}` } })));
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return { health, predictions };
}

const folder = path.join(home, 'photos');
for (const label of ['cat', 'dog']) {
  fs.mkdirSync(path.join(folder, label), { recursive: true });
  for (const file of photos(label, perClass, 0)) fs.symlinkSync(file, path.join(folder, label, path.basename(file)));
}
await run(['dataset', 'import', folder]);
await run(['dataset', 'build']);
// Admin: it starts the training run it measures.
const server = await startServe(env, { tokens: { admin: 'admin' } });
const { base: url, tokens: { admin: token } } = server;
try {
  const photo = photos('cat', 1, 4000)[0];
  const loadBefore = loadAverage();
  // The first predictions load the model and compile its graph: warm both routes up before timing either.
  let warmUps = 0;
  await sample(url, token, photo, async () => warmUps++ < 5);
  let idleRounds = 0;
  const idle = await sample(url, token, photo, async () => idleRounds++ < 40);
  const started = await fetch(`${url}/api/v1/training-runs`, {
    method: 'POST',
    headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
    body: JSON.stringify({ architecture: 'cnn', epochs }),
  });
  const { id } = await started.json();
  const status = async () => (await (await fetch(`${url}/api/v1/training-runs/${id}`, { headers: { Authorization: `Bearer ${token}` } })).json()).status;
  while ((await status()) === 'queued') await new Promise((resolve) => setTimeout(resolve, 100));
  const during = await sample(url, token, photo, async () => (await status()) === 'running');
  const finalStatus = await status();
  const row = (what, values) => ({ p50: percentile(values, 50), p99: percentile(values, 99), n: values.length, what });
  const result = {
    machine: machine(),
    training: { architecture: 'cnn', epochs, photos: perClass * 2, status: finalStatus },
    idle: { health: row('health', idle.health), prediction: row('prediction', idle.predictions) },
    duringTraining: { health: row('health', during.health), prediction: row('prediction', during.predictions) },
  };
  result.ratios = {
    healthP99DuringVsIdle: ratio(result.duringTraining.health.p99, result.idle.health.p99),
    predictionP50DuringVsIdle: ratio(result.duringTraining.prediction.p50, result.idle.prediction.p50),
  };
  result.loadAverageBefore = loadBefore;
  console.log(JSON.stringify(result, null, 2));
  const ms = (value) => `${value.toFixed(1)} ms`;
  const healthOk = result.duringTraining.health.p99 <= 100;
  const predictionOk = result.ratios.predictionP50DuringVsIdle <= 2;
  replaceBenchmarkSection(
    'serving-during-training',
    `## Serving while the server trains (issue 13)

\`node bench/serving-during-training.mjs ${perClass} ${epochs}\`: the built CLI serves on embedded defaults (training in its
own \`catdog worker\` child process); after 5 warm-up rounds, rounds of one \`GET /api/v1/health\` and one single-photo
\`POST /api/v1/predictions\` idle (n = ${result.idle.health.n}), then the same loop while a ${epochs}-epoch CNN run on ${perClass * 2} kaggle-dev
photos, started through \`POST /api/v1/training-runs\`, is \`running\` (n = ${result.duringTraining.health.n}; the run ended ${finalStatus}).
Load average before (1 / 5 / 15 min): ${loadBefore.join(" / ")}.

| | health p50 / p99 | prediction p50 / p99 |
|---|---|---|
| idle | ${ms(result.idle.health.p50)} / ${ms(result.idle.health.p99)} | ${ms(result.idle.prediction.p50)} / ${ms(result.idle.prediction.p99)} |
| during training | ${ms(result.duringTraining.health.p50)} / ${ms(result.duringTraining.health.p99)} | ${ms(result.duringTraining.prediction.p50)} / ${ms(result.duringTraining.prediction.p99)} |
| target | p99 ≤ 100 ms: ${healthOk ? 'met' : '**missed**'} | p50 ≤ 2× idle: **${result.ratios.predictionP50DuringVsIdle.toFixed(2)}×** ${predictionOk ? '' : '(**missed**)'} |

Before training left the server, a health check took 25–51 s during a 4-epoch CNN run (issue 13's report).

${machine()}.`,
  );
  if (!healthOk || !predictionOk || finalStatus !== 'succeeded') process.exitCode = 1;
  console.log(
    `health p50/p99 idle ${result.idle.health.p50.toFixed(1)}/${result.idle.health.p99.toFixed(1)} ms, during training ` +
      `${result.duringTraining.health.p50.toFixed(1)}/${result.duringTraining.health.p99.toFixed(1)} ms (target p99 <= 100 ms); ` +
      `prediction p50 idle ${result.idle.prediction.p50.toFixed(1)} ms, during ${result.duringTraining.prediction.p50.toFixed(1)} ms = ` +
      `${result.ratios.predictionP50DuringVsIdle.toFixed(2)}x idle (target <= 2x)`,
  );
} finally {
  await server.stop();
  fs.rmSync(home, { recursive: true, force: true });
}
