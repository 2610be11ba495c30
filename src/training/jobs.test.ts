import { describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { resolveTrainingParams } from './params.js';
import { trainCandidateJob, trainJob } from './jobs.js';

describe('training job payloads', () => {
  const params = resolveTrainingParams(loadConfig({ env: {}, cwd: '/nonexistent' }).config);

  it("takes a train job queued by the previous release (its params lack the options added since) and upgrades it, as the run's stored params are", () => {
    const { headL2: _headL2, tta: _tta, zeroShotVote: _vote, backboneImageSize: _size, ensemble: _ensemble, ...previousRelease } = params;
    const payload = trainJob.payload.parse({ runId: 'run_1', datasetId: 3, params: previousRelease });
    expect(payload.params).toEqual({ ...previousRelease, headL2: 1e-4, tta: false, zeroShotVote: false, backboneImageSize: null, ensemble: [] });
  });

  it('takes the newest params as they are, and refuses params that were never valid', () => {
    expect(trainCandidateJob.payload.parse({ datasetId: 3, params }).params).toEqual(params);
    expect(trainCandidateJob.payload.safeParse({ datasetId: 3, params: { ...params, architecture: 'rnn' } }).success).toBe(false);
  });
});
