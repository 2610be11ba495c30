import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/**
 * Python Keras 3.15 + TensorFlow 2.21 for the Keras interoperability tests, from the venv that
 * `scripts/setup-python-venv.sh` creates (`CATDOG_PY_VENV`, default ~/.cache/catdog/py-venv).
 */
export const pythonVenv = path.resolve(process.env.CATDOG_PY_VENV ?? path.join(os.homedir(), '.cache', 'catdog', 'py-venv'));
export const pythonPath = path.join(pythonVenv, 'bin', 'python');

function findSkipReason(): string {
  const setup = 'run `bash scripts/setup-python-venv.sh` to create it';
  if (!fs.existsSync(pythonPath)) return `Python Keras venv not found at ${pythonVenv}; ${setup}`;
  // Installed metadata, not an import: importing TensorFlow takes seconds.
  const check = spawnSync(pythonPath, ['-c', 'from importlib.metadata import version; print(version("keras"))'], {
    encoding: 'utf8',
  });
  const version = check.stdout.trim();
  if (check.status !== 0 || !version.startsWith('3.15.')) {
    return `the venv at ${pythonVenv} has no Keras 3.15 (found ${version || 'none'}); ${setup}`;
  }
  return '';
}

/** Empty when Python Keras is usable; otherwise why the tests that need it are skipped. */
export const skipWithoutPython = findSkipReason();

/**
 * Runs `script` (read from stdin) with `args` as `sys.argv[1:]`; resolves with stdout, rejects with stderr
 * when Python exits non-zero.
 */
export function runPython(script: string, args: string[] = []): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(pythonPath, ['-', ...args], {
      env: { ...process.env, TF_CPP_MIN_LOG_LEVEL: '3', KERAS_BACKEND: 'tensorflow', CUDA_VISIBLE_DEVICES: '' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else reject(new Error(`python exited with ${code}:\n${Buffer.concat(stderr).toString('utf8').slice(-4000)}`));
    });
    child.stdin.end(script);
  });
}

const KERAS_PREDICT = `
import sys, numpy as np, keras
model = keras.saving.load_model(sys.argv[1])
size = int(sys.argv[3])
pixels = np.fromfile(sys.argv[2], dtype="<f4").reshape(-1, size, size, 3)
print(" ".join(str(p) for p in model.predict(pixels, verbose=0).reshape(-1)))
`;

/** What Python Keras answers for `pixels` (`size` × `size` RGB images, one after another) with a `.keras` file. */
export async function kerasPredict(keras: Uint8Array, pixels: Float32Array, size: number): Promise<number[]> {
  const folder = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-keras-predict-'));
  try {
    fs.writeFileSync(path.join(folder, 'model.keras'), keras);
    fs.writeFileSync(path.join(folder, 'pixels.f32'), pixels);
    const output = await runPython(KERAS_PREDICT, [path.join(folder, 'model.keras'), path.join(folder, 'pixels.f32'), String(size)]);
    return output.trim().split(' ').map(Number);
  } finally {
    fs.rmSync(folder, { recursive: true, force: true });
  }
}
