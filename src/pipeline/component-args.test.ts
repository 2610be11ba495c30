import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CatdogError } from '../errors.js';
import { catdogPipeline, ingestComponent, promoteComponent, trainComponent } from './catdog-pipeline.js';
import { parseComponentArgs, writeComponentOutputs } from './component-args.js';
import type { ComponentDefinition } from './dag.js';
import { compileToKfp } from './kfp/compile.js';

/** Substitutes placeholders the way the KFP launcher does: parameter values as text, artifacts and output files as local paths. */
function launch(component: ComponentDefinition, parameters: Record<string, string>, root: string): string[] {
  const spec = compileToKfp(catdogPipeline(), { image: 'catdog:test' });
  const args = spec.deploymentSpec.executors[`exec-${component.name}`]?.container?.args ?? [];
  return args.map((arg) =>
    arg
      .replace(/\{\{\$\.inputs\.parameters\['(\w+)'\]\}\}/, (_, name: string) => parameters[name] ?? '')
      .replace(/\{\{\$\.inputs\.artifacts\['(\w+)'\]\.path\}\}/, (_, name: string) => path.join(root, 'in', name))
      .replace(/\{\{\$\.outputs\.artifacts\['(\w+)'\]\.path\}\}/, (_, name: string) => path.join(root, 'out', name))
      .replace(/\{\{\$\.outputs\.parameters\['(\w+)'\]\.output_file\}\}/, (_, name: string) => path.join(root, 'params', name, 'data')),
  );
}

function problemsOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    if (error instanceof CatdogError && error.code === 'invalid_component_args') return error.details?.problems;
    throw error;
  }
  throw new Error('expected invalid_component_args');
}

describe('parseComponentArgs', () => {
  const root = '/kfp';
  const trainParameters = { architecture: 'mobilenet', epochs: '20', learningRate: '0.001', batchSize: '32', imageSize: '224' };

  it('reads back, typed, what the compiled executor passes', () => {
    expect(parseComponentArgs(trainComponent, launch(trainComponent, trainParameters, root))).toEqual({
      inputs: { dataset: '/kfp/in/dataset', architecture: 'mobilenet', epochs: 20, learningRate: 0.001, batchSize: 32, imageSize: 224 },
      outputPaths: { model: '/kfp/out/model', metrics: '/kfp/out/metrics' },
    });
    expect(parseComponentArgs(ingestComponent, launch(ingestComponent, { source: '' }, root))).toEqual({
      inputs: { source: '' },
      outputPaths: { imported: '/kfp/out/imported', count: '/kfp/params/count/data' },
    });
  });

  it('accepts --flag=value, values starting with dashes and defaults of unbound inputs', () => {
    const withDefault: ComponentDefinition = {
      ...trainComponent,
      inputs: { ...trainComponent.inputs, batchSize: { type: 'integer', default: 16 }, augment: { type: 'boolean', optional: true } },
    };
    const argv = ['--input-dataset=/d', '--input-architecture', '--odd', '--input-epochs', '-3', '--input-learningRate=1e-3', '--input-imageSize=96'];
    expect(parseComponentArgs(withDefault, [...argv, '--output-model', '/m', '--output-metrics', '/x']).inputs).toEqual({
      dataset: '/d',
      architecture: '--odd',
      epochs: -3,
      learningRate: 0.001,
      imageSize: 96,
      batchSize: 16,
    });
  });

  it('lists every bad value, missing flag and unknown option at once', () => {
    const argv = launch(trainComponent, { ...trainParameters, epochs: '2.5', learningRate: 'fast' }, root)
      .filter((arg, index, all) => arg !== '--output-metrics' && all[index - 1] !== '--output-metrics')
      .concat('--input-optimizer', 'sgd', 'stray');
    const withoutBatch = argv.filter((arg, index, all) => arg !== '--input-batchSize' && all[index - 1] !== '--input-batchSize');
    expect(problemsOf(() => parseComponentArgs(trainComponent, withoutBatch))).toEqual([
      "unexpected argument 'stray'",
      "--input-epochs must be an integer, got '2.5'",
      "--input-learningRate must be a number, got 'fast'",
      '--input-batchSize is required (integer)',
      "--output-metrics is required (where to write output 'metrics')",
      'unknown option --input-optimizer',
    ]);
  });

  it('rejects booleans other than true/false, repeated flags and a flag without value', () => {
    const flags: ComponentDefinition = { name: 'flags', description: '', inputs: { dryRun: { type: 'boolean' } }, outputs: {} };
    expect(parseComponentArgs(flags, ['--input-dryRun', 'True']).inputs).toEqual({ dryRun: true });
    expect(problemsOf(() => parseComponentArgs(flags, ['--input-dryRun', 'yes']))).toEqual(["--input-dryRun must be a boolean, got 'yes'"]);
    expect(problemsOf(() => parseComponentArgs(flags, ['--input-dryRun', 'true', '--input-dryRun=false']))).toEqual([
      '--input-dryRun is given more than once',
    ]);
    expect(problemsOf(() => parseComponentArgs(flags, ['--input-dryRun']))).toEqual([
      '--input-dryRun needs a value',
      '--input-dryRun is required (boolean)',
    ]);
  });
});

describe('writeComponentOutputs', () => {
  let root: string;
  beforeAll(async () => {
    root = await fs.mkdtemp(path.join(os.tmpdir(), 'catdog-component-args-'));
  });
  afterAll(async () => {
    await fs.rm(root, { recursive: true, force: true });
  });

  it('writes parameter outputs where the orchestrator reads them, creating folders', async () => {
    const { outputPaths } = parseComponentArgs(ingestComponent, launch(ingestComponent, { source: 's3://photos' }, root));
    await writeComponentOutputs(ingestComponent, outputPaths, { count: 120 });
    expect(await fs.readFile(path.join(root, 'params', 'count', 'data'), 'utf8')).toBe('120');
    const promoted = parseComponentArgs(promoteComponent, launch(promoteComponent, {}, root)).outputPaths;
    await writeComponentOutputs(promoteComponent, promoted, { promoted: 'true' });
    expect(await fs.readFile(path.join(root, 'params', 'promoted', 'data'), 'utf8')).toBe('true');
  });

  it('writes nothing when a value is missing, mistyped, unknown or an artifact', async () => {
    const outputPaths = { imported: path.join(root, 'none', 'imported'), count: path.join(root, 'none', 'count') };
    await expect(writeComponentOutputs(ingestComponent, outputPaths, { count: 1.5, imported: 'x', total: 3 })).rejects.toMatchObject({
      code: 'invalid_component_args',
      details: {
        problems: [
          "'imported' is an artifact: write it at its path instead of returning a value",
          "'total' is not an output of ingest",
          'output \'count\' must be of type integer, got 1.5',
        ],
      },
    });
    await expect(writeComponentOutputs(ingestComponent, outputPaths, {})).rejects.toMatchObject({
      details: { problems: ["no value for output 'count'"] },
    });
    await expect(fs.access(path.join(root, 'none'))).rejects.toThrow();
  });
});
