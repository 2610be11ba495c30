/**
 * The process `checkBackboneInChildProcess` starts: reads a `BackboneCheckRequest` on stdin, loads that backbone
 * and runs one photo through it, and prints a `BackboneCheckAnswer` as its last stdout line. If TensorFlow kills
 * it, the parent sees the signal.
 */
import fs from 'node:fs/promises';
import { CatdogError } from '../errors.js';
import { decodeToRgb } from '../images/index.js';
import { loadBackbone } from './backbone.js';
import { type BackboneCheckAnswer, backboneCheckRequestSchema } from './backbone-check.js';
import { initTensorflow } from './tf.js';

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** A left-to-right red, top-to-bottom green, diagonal blue ramp: every channel varies, as in a photo. */
function gradient(size: number): Uint8Array {
  const pixels = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const at = (y * size + x) * 3;
      pixels[at] = Math.round((255 * x) / (size - 1));
      pixels[at + 1] = Math.round((255 * y) / (size - 1));
      pixels[at + 2] = Math.round((255 * (x + y)) / (2 * (size - 1)));
    }
  }
  return pixels;
}

async function check(): Promise<BackboneCheckAnswer> {
  const request = backboneCheckRequestSchema.parse(JSON.parse(await readStdin()));
  const backbone = await loadBackbone(request.source, {
    cacheDir: request.cacheDir,
    ...(request.scaling ? { scaling: request.scaling } : {}),
    ...(request.inputSize === undefined ? {} : { inputSize: request.inputSize }),
    ...(request.outputs ? { outputs: request.outputs } : {}),
  });
  const size = backbone.inputSize;
  const pixels = request.photoPath ? (await decodeToRgb(await fs.readFile(request.photoPath), size)).data : gradient(size);
  const { tf } = await initTensorflow();
  const input = tf.tensor4d(Float32Array.from(pixels), [1, size, size, 3]);
  const features = backbone.features(input);
  const values = await features.data();
  tf.dispose([input, features]);
  if (!values.every(Number.isFinite)) {
    return { ok: false, code: 'backbone_unusable', message: `backbone ${request.source} answers NaN or infinite features for a photo: its weights or its declared pixel scaling are wrong` };
  }
  return { ok: true, id: backbone.id, featureSize: backbone.featureSize };
}

check().then(
  (answer) => process.stdout.write(`\n${JSON.stringify(answer)}\n`),
  (error: unknown) => {
    const answer: BackboneCheckAnswer =
      error instanceof CatdogError
        ? { ok: false, code: error.code, message: error.message }
        : { ok: false, code: 'backbone_unavailable', message: error instanceof Error ? error.message : String(error) };
    process.stdout.write(`\n${JSON.stringify(answer)}\n`);
    process.exitCode = 1;
  },
);
