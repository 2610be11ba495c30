import { spawn } from 'node:child_process';
import { createHash, randomUUID } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { CatdogError } from '../errors.js';
import { backboneContentHash } from './backbone.js';
import { type BackboneOutputNames, backboneOutputNamesSchema, PIXEL_SCALINGS, type PixelScaling } from './catalogue.js';

/** What the check process is asked to load and run, on its stdin. */
export const backboneCheckRequestSchema = z.strictObject({
  source: z.string().min(1),
  cacheDir: z.string().min(1),
  scaling: z.enum(PIXEL_SCALINGS).optional(),
  inputSize: z.int().positive().optional(),
  outputs: backboneOutputNamesSchema.optional(),
  /** An encoded photo the forward pass runs on; absent: a colour gradient of the backbone's input size. */
  photoPath: z.string().min(1).optional(),
});
export type BackboneCheckRequest = z.infer<typeof backboneCheckRequestSchema>;

/** The check process's last stdout line. */
export const backboneCheckAnswerSchema = z.discriminatedUnion('ok', [
  z.strictObject({ ok: z.literal(true), id: z.string(), featureSize: z.int().positive() }),
  z.strictObject({ ok: z.literal(false), code: z.string(), message: z.string() }),
]);
export type BackboneCheckAnswer = z.infer<typeof backboneCheckAnswerSchema>;

/** A verdict kept on disk, so that a backbone is checked once per content, input size, scaling and oneDNN setting. */
const verdictSchema = z.discriminatedUnion('verdict', [
  z.strictObject({ verdict: z.literal('ok'), id: z.string(), checkedAt: z.string() }),
  z.strictObject({ verdict: z.literal('crashed'), signal: z.string(), checkedAt: z.string() }),
]);
type Verdict = z.infer<typeof verdictSchema>;

export interface BackboneCheckOptions {
  cacheDir: string;
  /** An encoded photo for the check's forward pass (absent: a colour gradient). */
  photoPath?: string;
  /** The check process's environment (default: this process's; TF_ENABLE_ONEDNN_OPTS is part of the verdict's key). */
  env?: NodeJS.ProcessEnv;
  /** How long the check process may take to load and run the backbone before it is killed. */
  timeoutMs?: number;
  onDownload?: (receivedBytes: number, totalBytes: number | undefined) => void;
}

const DEFAULT_TIMEOUT_MS = 10 * 60 * 1000;
/** What TensorFlow prints when its oneDNN kernels are on, and what turns them off (issue 16: SIGFPE in a 1×1 convolution). */
const ONEDNN_HINT =
  'If the crash is in a oneDNN kernel (as MobileNet v1 1.0 dies with SIGFPE in this TensorFlow build), set TF_ENABLE_ONEDNN_OPTS=0 in ' +
  "catdog's environment and restart it (such convolutions then run several times slower), or choose another training.backbone";

export class BackboneCrashedError extends CatdogError {
  constructor(source: string, signal: string) {
    super(
      'backbone_crashed',
      `backbone ${source} crashed TensorFlow (${signal}) while a separate check process loaded it and ran it on one photo, so catdog will not load it. ${ONEDNN_HINT}.`,
      422,
      { source, signal },
    );
  }
}

/**
 * Loads `source` and runs one forward pass in a child process before this process does, so that a backbone that
 * kills TensorFlow (SIGFPE, SIGSEGV, an abort) kills the child, not the server or worker: that backbone is refused
 * with a `BackboneCrashedError` naming the signal. The verdict is kept in `cacheDir/backbone-checks/`, per backbone
 * content, so each backbone is checked once.
 */
export async function checkBackboneInChildProcess(
  source: string,
  { scaling, inputSize, outputs }: { scaling?: PixelScaling; inputSize?: number; outputs?: BackboneOutputNames },
  options: BackboneCheckOptions,
): Promise<void> {
  const env = options.env ?? process.env;
  const contentHash = await backboneContentHash(source, options);
  const key = createHash('sha256')
    .update(JSON.stringify([contentHash, inputSize ?? null, scaling ?? null, env.TF_ENABLE_ONEDNN_OPTS ?? null, ...(outputs ? [outputs] : [])]))
    .digest('hex')
    .slice(0, 32);
  const verdictFile = path.join(options.cacheDir, 'backbone-checks', `${key}.json`);
  const known = await readVerdict(verdictFile);
  if (known?.verdict === 'crashed') throw new BackboneCrashedError(source, known.signal);
  if (known) return;

  const request: BackboneCheckRequest = {
    source,
    cacheDir: options.cacheDir,
    ...(scaling ? { scaling } : {}),
    ...(inputSize === undefined ? {} : { inputSize }),
    ...(outputs ? { outputs } : {}),
    ...(options.photoPath ? { photoPath: options.photoPath } : {}),
  };
  const outcome = await runCheckProcess(request, env, options.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  const checkedAt = new Date().toISOString();
  if ('signal' in outcome) {
    // Only a fault of the backbone's own is remembered: a check stopped from outside (Ctrl-C, a service manager's
    // SIGTERM, the OOM killer's SIGKILL) says nothing about the backbone, and runs again next time.
    if (!CRASH_SIGNALS.has(outcome.signal)) {
      throw new CatdogError('backbone_check_interrupted', `the check of backbone ${source} was stopped by ${outcome.signal} before it finished; start again to check it`, 503, { source, signal: outcome.signal });
    }
    await writeVerdict(verdictFile, { verdict: 'crashed', signal: outcome.signal, checkedAt });
    throw new BackboneCrashedError(source, outcome.signal);
  }
  // A load that fails with an error (offline, an unsupported layer) is not a verdict: the same error comes again.
  if (!outcome.answer.ok) throw new CatdogError(outcome.answer.code, outcome.answer.message, 400, { source });
  await writeVerdict(verdictFile, { verdict: 'ok', id: outcome.answer.id, checkedAt });
}

type CheckOutcome = { answer: BackboneCheckAnswer } | { signal: string };

/** The signals a process gets from its own faults: a TensorFlow kernel that divides by zero, reads out of bounds, aborts. */
const CRASH_SIGNALS = new Set(['SIGFPE', 'SIGSEGV', 'SIGILL', 'SIGBUS', 'SIGABRT', 'SIGTRAP']);

function runCheckProcess(request: BackboneCheckRequest, env: NodeJS.ProcessEnv, timeoutMs: number): Promise<CheckOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [checkProcessScript()], { env, stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(
          new CatdogError(
            'backbone_check_timeout',
            `checking backbone ${request.source} (loading it and running one photo through it) took over ${Math.round(timeoutMs / 1000)} s; ` +
              'it is too slow for this machine, or stuck: choose another training.backbone',
            503,
            { source: request.source },
          ),
        );
        return;
      }
      if (signal) return resolve({ signal });
      const lastLine = Buffer.concat(stdout).toString('utf8').trim().split('\n').at(-1) ?? '';
      const answer = backboneCheckAnswerSchema.safeParse(safeJson(lastLine));
      if (answer.success) return resolve({ answer: answer.data });
      const tail = Buffer.concat(stderr).toString('utf8').trim().split('\n').slice(-5).join('\n');
      reject(new Error(`the backbone check process for ${request.source} exited with code ${code} without an answer:\n${tail}`));
    });
    child.stdin.end(JSON.stringify(request));
  });
}

/**
 * The compiled check process beside this module (`dist/ml/`); from the TypeScript sources (tests), the built one
 * in `dist/`, which `npm run build` makes.
 */
function checkProcessScript(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const script = 'backbone-check-process.js';
  return path.basename(path.dirname(here)) === 'src' ? path.resolve(here, '../../dist/ml', script) : path.join(here, script);
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

async function readVerdict(file: string): Promise<Verdict | undefined> {
  const text = await fs.readFile(file, 'utf8').catch(() => undefined);
  if (text === undefined) return undefined;
  const parsed = verdictSchema.safeParse(safeJson(text));
  // An unreadable verdict (a foreign or truncated file) is as good as none: the check runs again.
  return parsed.success ? parsed.data : undefined;
}

async function writeVerdict(file: string, verdict: Verdict): Promise<void> {
  await fs.mkdir(path.dirname(file), { recursive: true });
  const temporary = `${file}.${randomUUID()}.tmp`;
  await fs.writeFile(temporary, JSON.stringify(verdict));
  await fs.rename(temporary, file);
}
