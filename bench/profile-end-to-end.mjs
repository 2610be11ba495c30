#!/usr/bin/env node
// Where figure 4's time goes: `catdog train --data` and the Keras script of bench/peers/keras_end_to_end.py on the
// same photos, each cut into stages. catdog's stages are the lines its CLI prints on stderr when piped (one per stage
// and per tenth of a stage's progress), timestamped here as they arrive; the script reports its own stage times.
// Usage: node bench/profile-end-to-end.mjs [--preset <default preset>] [--perClass 1000]
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catdogEnv, kagglePhotoFolder, kerasPeerBackbone, loadAverage, options, peerPython, repoRoot, requireShared, runMeasured } from './lib.mjs';

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
function profileCatdog(dataDir, home, preset) {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'main.js'), 'train', '--data', dataDir, '--json'], {
      env: catdogEnv(home, preset, { CATDOG_LOG_LEVEL: 'info' }),
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

const opts = options({ preset: '', perClass: 1000 });
requireShared();
const peer = kerasPeerBackbone(opts.preset);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-profile-e2e-'));
try {
  const dataDir = kagglePhotoFolder(path.join(work, 'photos'), opts.perClass);
  const loadBefore = loadAverage();
  const catdog = await profileCatdog(dataDir, path.join(work, 'home'), peer.preset);
  const keras = runMeasured(peerPython(), [path.join(repoRoot, 'bench', 'peers', 'keras_end_to_end.py'), dataDir, peer.kerasFile]);
  console.log(JSON.stringify({ subject: peer.subject, loadBefore, loadAfter: loadAverage(), catdog, keras }, null, 1));
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
