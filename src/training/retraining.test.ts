import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { createTestApp, type TestApp } from '../../test/support/app.js';
import { skipWithoutShared } from '../../test/support/shared.js';
import { CatdogError } from '../errors.js';
import { InlineJobQueue } from '../jobs/index.js';
import { retrainJob } from './jobs.js';
import { RETRAIN_LOCK, retrain, retrainJobId, RetrainingTrigger } from './retraining.js';

describe.skipIf(skipWithoutShared)('retraining trigger', () => {
  let app: TestApp;
  let queue: InlineJobQueue;
  const config = { enabled: true, minNewValidated: 3, cron: '' };

  const validate = async (count: number) => {
    for (let i = 0; i < count; i++) {
      const prediction = await app.db.predictions.create({
        imageHash: `${i}`.padStart(64, 'a'),
        modelId: 'zero-shot',
        label: 'cat',
        confidence: 0.8,
        probabilities: { cat: 0.8, dog: 0.2 },
        latencyMs: 5,
      });
      await app.db.predictions.validate(prediction.id, { label: 'dog', actor: 'test' });
    }
  };

  beforeAll(async () => {
    app = await createTestApp();
  });
  afterAll(async () => {
    await queue?.close();
    await app?.dispose();
  });
  // No worker: enqueued jobs stay waiting, so the test sees exactly what the trigger enqueued.
  beforeEach(async () => {
    await queue?.close();
    queue = new InlineJobQueue();
  });

  it('enqueues nothing below the threshold, then one retrain job with the fixed id for the latest dataset version', async () => {
    const trigger = new RetrainingTrigger(app, queue, config);
    await validate(2);
    expect(await trigger.check('test')).toEqual({ enqueued: false, reason: '2 of 3 validations since the latest dataset version', newValidated: 2 });
    expect(await queue.list()).toEqual([]);

    await validate(1);
    const enqueued = await trigger.check('test');
    expect(enqueued).toMatchObject({ enqueued: true, newValidated: 3, job: { id: retrainJobId(null), name: retrainJob.name, state: 'waiting' } });
    expect(retrainJobId(null)).toBe('retrain-after-v0');
    expect((await queue.list())[0]?.data).toEqual({ reason: '3 new validations (test)', afterDatasetId: null });
  });

  it('asks once for validations arriving together, and not again while that job is pending', async () => {
    const trigger = new RetrainingTrigger(app, queue, config);
    const checks = await Promise.all([trigger.check('a'), trigger.check('b'), trigger.check('c')]);
    expect(checks.filter((check) => check.enqueued)).toHaveLength(1);
    expect(checks.filter((check) => !check.enqueued).map((check) => check.reason)).toEqual([
      'retraining after dataset v0 is already waiting',
      'retraining after dataset v0 is already waiting',
    ]);
    expect((await queue.list()).map((job) => job.id)).toEqual([retrainJobId(null)]);
  });

  it('enqueues nothing while another retraining holds the lock, and a retrain job refuses to run beside it', async () => {
    const trigger = new RetrainingTrigger(app, queue, config);
    const held = await queue.tryLock(RETRAIN_LOCK, 60_000);
    expect(held).toBeDefined();
    try {
      expect(await trigger.check('test')).toEqual({ enqueued: false, reason: 'a retraining is running' });
      expect(await queue.list()).toEqual([]);
      const refused = await retrain(app, queue).catch((error: unknown) => error);
      expect(refused).toBeInstanceOf(CatdogError);
      expect((refused as CatdogError).code).toBe('retraining_in_progress');
    } finally {
      await held!.release();
    }
    expect(await trigger.check('test')).toMatchObject({ enqueued: true });
  });

  it('does nothing when disabled or on a schedule, and refuses an invalid cron expression', async () => {
    new RetrainingTrigger(app, queue, { ...config, enabled: false }).afterValidation();
    new RetrainingTrigger(app, queue, { ...config, cron: '0 3 * * *' }).afterValidation();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(await queue.list()).toEqual([]);
    expect(() => new RetrainingTrigger(app, queue, { ...config, cron: '61 * * * *' })).toThrow(/retraining.cron/);
  });
});
