import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestApp, importKagglePhotos, type TestApp } from '../../test/support/app.js';
import { skipWithoutShared } from '../../test/support/shared.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { CatdogError } from '../errors.js';
import { InlineJobQueue } from '../jobs/index.js';
import { datasetParams } from './params.js';
import { completeSweep, expandGrid, parseSweepGrid, pickWinner, startSweep, type SweepCandidate } from './sweep.js';

const candidate = (index: number, validation?: { accuracy: number; loss: number }, state: SweepCandidate['state'] = 'completed'): SweepCandidate => ({
  index,
  jobId: `job-${index}`,
  overrides: {},
  state,
  ...(validation && { validation: { ...validation, bestEpoch: 1 } }),
});

describe('sweep grid', () => {
  it('expands to every combination, the last key varying fastest', () => {
    expect(expandGrid({ learningRate: [0.001, 0.01], head: ['logistic', 'mlp'], epochs: [3] })).toEqual([
      { learningRate: 0.001, head: 'logistic', epochs: 3 },
      { learningRate: 0.001, head: 'mlp', epochs: 3 },
      { learningRate: 0.01, head: 'logistic', epochs: 3 },
      { learningRate: 0.01, head: 'mlp', epochs: 3 },
    ]);
    expect(expandGrid({ batchSize: [8, 16, 32] })).toHaveLength(3);
  });

  it('refuses more than 256 candidates', () => {
    const grid = { learningRate: Array.from({ length: 17 }, (_, i) => (i + 1) / 100), batchSize: Array.from({ length: 16 }, (_, i) => i + 1) };
    expect(() => expandGrid(grid)).toThrow(/272 candidates; at most 256/);
  });

  it('parses --grid JSON and names what is wrong with a bad one', () => {
    expect(expandGrid(parseSweepGrid('{"architecture":["mobilenet","cnn"],"learningRate":[0.001,0.01]}'))).toHaveLength(4);
    const refusal = (text: string) => {
      try {
        parseSweepGrid(text);
      } catch (error) {
        expect(error).toBeInstanceOf(CatdogError);
        expect((error as CatdogError).code).toBe('invalid_sweep_grid');
        return (error as Error).message;
      }
      throw new Error(`accepted ${text}`);
    };
    expect(refusal('{learningRate: [0.1]}')).toMatch(/not JSON/);
    expect(refusal('{}')).toMatch(/empty/);
    expect(refusal('{"momentum":[0.9]}')).toMatch(/learningRate, head/);
    expect(refusal('{"learningRate":[]}')).toMatch(/^sweep grid learningRate:/);
    expect(refusal('{"head":["svm"]}')).toMatch(/^sweep grid head/);
  });
});

describe('sweep winner', () => {
  it('is the highest validation accuracy', () => {
    expect(pickWinner([candidate(0, { accuracy: 0.7, loss: 0.1 }), candidate(1, { accuracy: 0.9, loss: 0.5 }), candidate(2, { accuracy: 0.8, loss: 0.2 })])?.index).toBe(1);
  });

  it('breaks an accuracy tie on the lower validation loss, then on the earlier candidate', () => {
    expect(pickWinner([candidate(0, { accuracy: 0.9, loss: 0.4 }), candidate(1, { accuracy: 0.9, loss: 0.3 }), candidate(2, { accuracy: 0.9, loss: 0.35 })])?.index).toBe(1);
    expect(pickWinner([candidate(0, { accuracy: 0.9, loss: 0.3 }), candidate(1, { accuracy: 0.9, loss: 0.3 })])?.index).toBe(0);
  });

  it('ignores candidates that did not complete, and there is none when none did', () => {
    expect(pickWinner([candidate(0, { accuracy: 1, loss: 0 }, 'failed'), candidate(1, { accuracy: 0.6, loss: 0.6 })])?.index).toBe(1);
    expect(pickWinner([candidate(0, undefined, 'failed'), candidate(1, undefined, 'cancelled')])).toBeUndefined();
  });
});

describe.skipIf(skipWithoutShared)('waiting for a sweep', () => {
  let app: TestApp;
  let datasetId: number;

  beforeAll(async () => {
    app = await createTestApp();
    await importKagglePhotos(app, path.join(app.home, 'photos'), 3);
    datasetId = (await buildDatasetVersion(app, datasetParams(app.config))).version.id;
  });
  afterAll(async () => app?.dispose());

  it('ends in sweep_timeout naming the job and how to resume when nobody runs its jobs', async () => {
    // No worker started: the candidates stay waiting, as on a Redis queue with no `catdog worker`.
    const queue = new InlineJobQueue();
    try {
      const sweep = await startSweep(app, queue, { grid: { learningRate: [0.001, 0.01] }, datasetId });
      const error = await completeSweep(app, queue, sweep, { timeoutMs: 300 }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CatdogError);
      expect((error as CatdogError).code).toBe('sweep_timeout');
      expect((error as Error).message).toMatch(new RegExp(`candidate #\\d \\(job train-candidate-${sweep.id}-\\d\\) did not finish in time`));
      expect((error as Error).message).toContain(`catdog sweep --resume ${sweep.id}`);
      expect((await queue.list()).map((job) => job.state)).toEqual(['waiting', 'waiting']);
    } finally {
      await queue.close();
    }
  });

  it('refuses a grid whose candidate contradicts the config, before enqueueing anything', async () => {
    const queue = new InlineJobQueue();
    const fineTuning = { ...app, config: { ...app.config, training: { ...app.config.training, fineTune: { ...app.config.training.fineTune, enabled: true } } } };
    try {
      const error = await startSweep(fineTuning, queue, { grid: { architecture: ['mobilenet', 'cnn'] }, datasetId }).catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(CatdogError);
      expect((error as CatdogError).code).toBe('invalid_sweep_grid');
      expect((error as Error).message).toMatch(/^sweep candidate #1 \{"architecture":"cnn"\} conflicts with training\.fineTune\.enabled: fine-tuning needs/);
      expect(await queue.list()).toEqual([]);
      // The same grid is fine when the config does not fine-tune.
      const sweep = await startSweep(app, queue, { grid: { architecture: ['mobilenet', 'cnn'] }, datasetId });
      expect(sweep.candidates).toHaveLength(2);
    } finally {
      await queue.close();
    }
  });
});
