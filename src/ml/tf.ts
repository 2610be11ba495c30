import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TensorflowModule from '@tensorflow/tfjs';
import { CatdogError } from '../errors.js';
import { withStderrMuted } from './native-stderr.js';

export type Tensorflow = typeof TensorflowModule;
export type MlBackend = 'tensorflow' | 'wasm';

export interface LoadedTensorflow {
  tf: Tensorflow;
  backend: MlBackend;
  /** Why the backend is not native TensorFlow; undefined on the native backend. */
  reason?: string;
}

// The tfjs packages are CommonJS; `require` keeps every module of the process on one shared instance (and one
// engine), whichever backend package loaded it first.
const require = createRequire(import.meta.url);

let loading: Promise<LoadedTensorflow> | undefined;
let loaded: LoadedTensorflow | undefined;

/**
 * Loads TensorFlow.js once per process: native TensorFlow through @tensorflow/tfjs-node when its binding works,
 * otherwise the portable WebAssembly backend, with one line on stderr saying why and how to fix it.
 * `CATDOG_BACKEND=wasm` forces the fallback; `CATDOG_BACKEND=tensorflow` makes a missing binding an error.
 */
export function initTensorflow(): Promise<LoadedTensorflow> {
  loading ??= loadTensorflow().then((result) => (loaded = result));
  return loading;
}

/** The TensorFlow.js namespace for synchronous code; `initTensorflow()` must have been awaited before. */
export function tensorflow(): Tensorflow {
  if (!loaded) throw new Error('TensorFlow is not loaded yet: await initTensorflow() first');
  return loaded.tf;
}

async function loadTensorflow(): Promise<LoadedTensorflow> {
  // Before the native library loads: it reads the level once, and its INFO lines are noise for users.
  process.env.TF_CPP_MIN_LOG_LEVEL ??= '2';
  // The lines absl writes while the library loads ignore that level; above 0 they are hidden too (`catdog --verbose`
  // sets 0 to see them).
  const quietLoad = Number(process.env.TF_CPP_MIN_LOG_LEVEL) > 0;
  const requested = process.env.CATDOG_BACKEND;
  if (requested === 'wasm') return { ...(await loadWasm()), reason: 'CATDOG_BACKEND=wasm is set' };
  if (requested !== undefined && requested !== '' && requested !== 'tensorflow') {
    throw new CatdogError(
      'invalid_config',
      `CATDOG_BACKEND=${requested} is not a backend: use "tensorflow" (native, default) or "wasm"`,
    );
  }
  let nativeFailure: string;
  try {
    const loadNative = () => require('@tensorflow/tfjs-node') as Tensorflow;
    return { tf: quietLoad ? withStderrMuted(loadNative) : loadNative(), backend: 'tensorflow' };
  } catch (error) {
    nativeFailure = firstLine(error);
  }
  if (requested === 'tensorflow') {
    throw new CatdogError(
      'backend_unavailable',
      `CATDOG_BACKEND=tensorflow but native TensorFlow cannot be loaded (${nativeFailure}); ` +
        'run `node scripts/setup-tensorflow.mjs`',
      503,
    );
  }
  const fallback = await loadWasm();
  process.stderr.write(
    `catdog: native TensorFlow is unavailable (${nativeFailure}); using the slower WebAssembly backend. ` +
      'To fix it run `node scripts/setup-tensorflow.mjs`.\n',
  );
  return { ...fallback, reason: `native TensorFlow is unavailable: ${nativeFailure}` };
}

async function loadWasm(): Promise<LoadedTensorflow> {
  const tf = require('@tensorflow/tfjs') as Tensorflow;
  const wasm = require('@tensorflow/tfjs-backend-wasm') as typeof import('@tensorflow/tfjs-backend-wasm');
  // Offline: the .wasm binaries ship in the package's dist folder, not on a CDN.
  const distDir = path.join(path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/package.json')), 'dist');
  wasm.setWasmPaths(`${distDir}${path.sep}`);
  if (!(await tf.setBackend('wasm'))) {
    throw new CatdogError('backend_unavailable', `the WebAssembly backend failed to start from ${distDir}`, 503);
  }
  return { tf, backend: 'wasm' };
}

function firstLine(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.split('\n')[0] ?? message;
}
