import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { backendParityOutputs } from '../../test/support/ml.js';
import { initTensorflow, tensorflow } from './tf.js';

const run = promisify(execFile);
const moduleUrl = (file: string): string => new URL(file, import.meta.url).href;

/** Runs `initTensorflow()` and the parity model in a fresh Node process with the given environment. */
async function inChildProcess(
  env: Record<string, string>,
  nodeOptions: string[] = [],
): Promise<{ stdout: string; stderr: string }> {
  const script = `
    const { initTensorflow } = await import(${JSON.stringify(moduleUrl('./tf.ts'))});
    const { backendParityOutputs } = await import(${JSON.stringify(moduleUrl('../../test/support/ml.ts'))});
    try {
      const { tf, backend, reason } = await initTensorflow();
      console.log(JSON.stringify({ backend, reason, outputs: backendParityOutputs(tf) }));
    } catch (error) {
      console.log(JSON.stringify({ error: { name: error.name, code: error.code, message: error.message } }));
    }`;
  const registerHooks = `import { register } from 'node:module'; register(${JSON.stringify(moduleUrl('../../test/support/typescript-hooks.mjs'))});`;
  return run(
    process.execPath,
    [...nodeOptions, '--import', `data:text/javascript,${encodeURIComponent(registerHooks)}`, '--input-type=module', '-e', script],
    { env: { ...process.env, ...env }, timeout: 60_000 },
  );
}

describe('initTensorflow', () => {
  it('loads native TensorFlow once per process and quiets its C++ info logs', async () => {
    const first = await initTensorflow();
    expect(await initTensorflow()).toBe(first);
    expect(tensorflow()).toBe(first.tf);
    expect(first.backend).toBe(process.env.CATDOG_BACKEND === 'wasm' ? 'wasm' : 'tensorflow');
    expect(first.tf.getBackend()).toBe(first.backend);
    expect(Number(process.env.TF_CPP_MIN_LOG_LEVEL)).toBeGreaterThanOrEqual(1);
  });

  it('falls back to wasm on CATDOG_BACKEND=wasm and computes what native TensorFlow computes', async () => {
    const { tf } = await initTensorflow();
    const native = backendParityOutputs(tf);
    const { stdout, stderr } = await inChildProcess({ CATDOG_BACKEND: 'wasm' });
    const child = JSON.parse(stdout) as { backend: string; reason: string; outputs: number[] };
    expect(child.backend).toBe('wasm');
    expect(child.reason).toContain('CATDOG_BACKEND=wasm');
    // Asked for, so nothing to warn about.
    expect(stderr).not.toContain('native TensorFlow is unavailable');
    expect(child.outputs).toHaveLength(6);
    expect(new Set(native).size).toBe(6);
    child.outputs.forEach((value, i) => expect(Math.abs(value - native[i]!)).toBeLessThan(1e-4));
  });

  it('refuses an unknown CATDOG_BACKEND instead of silently ignoring it', async () => {
    const { stdout } = await inChildProcess({ CATDOG_BACKEND: 'gpu' });
    expect(JSON.parse(stdout)).toMatchObject({ error: { name: 'CatdogError', code: 'invalid_config' } });
  });

  it('falls back to wasm with one stderr line saying why and how to fix it when the native binding fails', async () => {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-ml-tf-'));
    const breakBinding = path.join(dir, 'break-tfjs-node.cjs');
    // What a machine without libtensorflow sees: requiring the package throws.
    await fs.writeFile(
      breakBinding,
      `const Module = require('node:module');
       const resolve = Module._resolveFilename;
       Module._resolveFilename = function (request, ...rest) {
         if (request === '@tensorflow/tfjs-node') throw new Error('libtensorflow.so.2: cannot open shared object file');
         return resolve.call(this, request, ...rest);
       };`,
    );
    try {
      const { stdout, stderr } = await inChildProcess({ CATDOG_BACKEND: '' }, ['--require', breakBinding]);
      expect(JSON.parse(stdout)).toMatchObject({ backend: 'wasm', reason: expect.stringContaining('libtensorflow.so.2') });
      const warnings = stderr.split('\n').filter((line) => line.includes('native TensorFlow is unavailable'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toContain('libtensorflow.so.2: cannot open shared object file');
      expect(warnings[0]).toContain('node scripts/setup-tensorflow.mjs');
    } finally {
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
});
