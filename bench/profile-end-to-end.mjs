#!/usr/bin/env node
// Where figure 4's time goes: `catdog train --data` and the Keras script of bench/peers/keras_end_to_end.py on the
// same photos, each cut into stages. catdog's stages are the lines its CLI prints on stderr when piped (one per stage
// and per tenth of a stage's progress), timestamped here as they arrive; the script reports its own stage times.
// Usage: node bench/profile-end-to-end.mjs [--perClass 1000]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { kagglePhotoFolder, loadAverage, options, peerPython, repoRoot, requireShared, runMeasured, sharedDir } from './lib.mjs';

/**
 * The stage a CLI line starts: a progress line names its own ("features: 320/3180", "saving…"); the import report
 * ends the import and the dataset line ends the dataset build. Other lines (logs) start none.
 */
function stageOf(line) {
  if (line.startsWith('imported ')) return 'dataset version';
  if (/^(built|reusing) dataset version/.test(line)) return 'run set-up (backbone, graph)';
  return line.match(/^([a-z][a-z -]*)(?:: \d+\/\d+|…$)/)?.[1];
}

/** Runs catdog's CLI; resolves to its stages in order, each with the seconds from its first line to the next stage's. */
function profileCatdog(dataDir, home) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'main.js'), 'train', '--data', dataDir, '--json'], {
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '2', CATDOG_HOME: home, CATDOG_BACKBONE_URL: path.join(sharedDir, 'models', 'mobilenet_v1_0.75_224', 'model.json') },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const marks = [{ stage: 'start-up (node, modules, database, config)', at: 0 }];
    let stdout = '';
    let pending = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => {
      const at = (performance.now() - started) / 1000;
      pending += chunk;
      const lines = pending.split('\n');
      pending = lines.pop();
      for (const line of lines) {
        const stage = stageOf(line.trim());
        if (stage && stage !== marks.at(-1).stage) marks.push({ stage, at });
      }
    });
    child.on('error', reject);
    child.on('close', (code) => {
      const total = (performance.now() - started) / 1000;
      if (code !== 0) return reject(new Error(`catdog train exited with ${code}`));
      const stages = marks.map((mark, i) => ({ stage: mark.stage, seconds: (marks[i + 1]?.at ?? total) - mark.at }));
      resolve({ total, stages, outcome: JSON.parse(stdout) });
    });
  });
}

const opts = options({ perClass: 1000 });
requireShared();
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-profile-e2e-'));
try {
  const dataDir = kagglePhotoFolder(path.join(work, 'photos'), opts.perClass);
  const loadBefore = loadAverage();
  const catdog = await profileCatdog(dataDir, path.join(work, 'home'));
  const keras = runMeasured(peerPython(), [path.join(repoRoot, 'bench', 'peers', 'keras_end_to_end.py'), dataDir]);
  console.log(JSON.stringify({ loadBefore, loadAfter: loadAverage(), catdog, keras }, null, 1));
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
