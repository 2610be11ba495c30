#!/usr/bin/env node
// Figure 4: end to end, photos on disk to a trained and evaluated model, for a training.preset (default: the config
// default preset). `catdog train --data` with that preset, its backbones read from ../shared/models (import, decode,
// the preset's features, logistic head, test-split evaluation, registry and promotion) vs a minimal Keras script doing
// the same job (bench/peers/keras_end_to_end.py) on the same photos and the same split, with catdog's own Keras export
// of the preset's backbone (bench/peer-backbone.mjs: the same weights and input size, checked feature for feature).
// Photos: the first `perClass` per class of kaggle-dev, as symlinks in a temp folder (never copies).
// Usage: node bench/end-to-end.mjs [--preset <default preset>] [--perClass 1000] [--rounds 2]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { catdogEnv, interleaved, kagglePhotoFolder, kerasPeerBackbone, loadAverage, options, peerPython, repoRoot, report, requireShared, runMeasured } from './lib.mjs';

const opts = options({ preset: '', perClass: 1000, rounds: 2 });
requireShared();
const python = peerPython();
const peer = kerasPeerBackbone(opts.preset);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-bench-e2e-'));
const dataDir = kagglePhotoFolder(path.join(work, 'photos'), opts.perClass);

let round = 0;
const timed = (run) => () => {
  const started = Date.now();
  const result = run();
  return { ...result, value: (Date.now() - started) / 1000 };
};
const loadBefore = loadAverage();
/**
 * `catdog train --data` from a fresh home (nothing imported or cached by an earlier round), with `extraEnv` on top of
 * the preset's config.
 */
const catdogTrain = (extraEnv = {}) => timed(() => {
  const home = path.join(work, `home-${round++}`);
  const result = runMeasured(process.execPath, [path.join(repoRoot, 'dist', 'cli', 'main.js'), 'train', '--data', dataDir, '--json'], {
    env: catdogEnv(home, peer.preset, extraEnv),
  });
  return { testAccuracy: result.metrics.accuracy, peakRssMiB: result.peakRssMiB };
});
// The default learns from each photo and from its mirror image: 1.9× the script's backbone passes. This row does the
// script's work, so the two engines compare on equal work (test-time augmentation is off in every preset; it is set
// off here too, so the row stays the script's work whatever a preset turns on).
const SCRIPT_WORK = 'catdog train, no mirrored views';
let medians;
try {
  medians = interleaved({
    'catdog train': catdogTrain(),
    [SCRIPT_WORK]: catdogTrain({ CATDOG_DATASET__AUGMENTATION__HORIZONTAL_FLIP__ENABLED: 'false', CATDOG_TRAINING__TTA: 'false' }),
    'Keras script': timed(() => {
      const result = runMeasured(python, [path.join(repoRoot, 'bench', 'peers', 'keras_end_to_end.py'), dataDir, peer.kerasFile]);
      return { testAccuracy: result.testAccuracy, peakRssMiB: result.peakRssMiB };
    }),
  }, opts.rounds, { lowerIsBetter: true });
} finally {
  fs.rmSync(work, { recursive: true, force: true });
}
report('end-to-end', {
  preset: peer.preset,
  subject: peer.subject,
  unit: 'seconds (wall, lower is better)',
  what:
    `${opts.perClass * 2} kaggle-dev photos from disk to an evaluated model (same photos, same hash split), best of ${opts.rounds} interleaved round(s); ` +
    `backbone: ${peer.subject}${peer.backbones.length > 1 ? ' (features concatenated)' : ''}, for the Keras script catdog's own Keras export of it, whose features differ from catdog's by at most ${peer.maxAbsDiff.toExponential(1)}; ` +
    "catdog's head as configured by default, the Keras script's a fixed L2 1e-4 with early stopping",
  peerMaxAbsDiff: peer.maxAbsDiff,
  loadBefore,
  loadAfter: loadAverage(),
  // Each catdog row is compared with the script in its own group.
  rows: [['catdog train', `${opts.perClass * 2} photos`], [SCRIPT_WORK, `${opts.perClass * 2} photos, the script's work`]].flatMap(([catdog, group]) =>
    [catdog, 'Keras script'].map((impl) => ({
      group,
      impl,
      value: medians[impl].value,
      values: medians[impl].values,
      testAccuracy: medians[impl].testAccuracy,
      peakRssMiB: medians[impl].peakRssMiB,
    })),
  ),
});
