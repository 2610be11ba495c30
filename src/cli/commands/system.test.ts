import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { builtCli, catdog } from '../../../test/support/cli.js';

const onWasm = process.env.CATDOG_BACKEND === 'wasm';

describe('catdog doctor (built CLI)', () => {
  let home: string;
  beforeAll(() => {
    expect(fs.existsSync(builtCli), `${builtCli} is missing: run npm run build`).toBe(true);
    home = fs.mkdtempSync(path.join(os.tmpdir(), 'catdog-doctor-'));
  });
  afterAll(() => fs.rmSync(home, { recursive: true, force: true }));

  const training = async (env: Record<string, string> = {}) => {
    const result = await catdog(home, ['doctor', '--json'], env);
    expect(result.code, result.stderr).toBe(0);
    return (JSON.parse(result.stdout) as { training: string }).training;
  };

  it.skipIf(onWasm)('prints the graph training path on native TensorFlow, and the eager one when CATDOG_TRAINING_STEP=eager turns it off', async () => {
    expect(await training()).toMatch(/^graph: heads .*, fine-tuned backbone blocks and the CNN as one TensorFlow graph per step/);
    expect(await training({ CATDOG_TRAINING_STEP: 'eager' })).toBe('eager: every network eagerly: CATDOG_TRAINING_STEP=eager is set');
  });

  it('prints the eager training path on the WebAssembly backend', async () => {
    expect(await training({ CATDOG_BACKEND: 'wasm' })).toBe('eager: every network eagerly: the WebAssembly backend cannot run TensorFlow graphs');
  });
});
