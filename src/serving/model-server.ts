import type { Database } from '../db/index.js';
import type { Logger } from '../app/logger.js';
import { DECODE_ID } from '../images/index.js';
import type { BackboneProvider } from '../ml/backbone-provider.js';
import { loadClassifier, zeroShotClassifier, type Classifier } from '../registry/classifier.js';
import type { BlobStore } from '../storage/index.js';
import { batchPredictions } from './batcher.js';

export interface ModelServerDependencies {
  db: Pick<Database, 'models'>;
  blobs: BlobStore;
  backbones: BackboneProvider;
  logger: Logger;
  /** Backbone for zero-shot answers before any model is promoted. */
  defaultBackbone: string;
}

/**
 * Holds the promoted model in memory and swaps it when the promotion changes. Promotions can come from another
 * process (the CLI, a worker), so the database is the source of truth: it is polled, and `refresh()` checks at once.
 * The swap is atomic from a caller's view: a request keeps the classifier it started with.
 */
export class ModelServer {
  private active: Classifier | undefined;
  private loading: Promise<Classifier> | undefined;
  private loadingAgain: Promise<Classifier> | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly modelCallObservers: ((images: number) => void)[] = [];

  constructor(private readonly deps: ModelServerDependencies) {}

  /** Tells `observer` the size of every model call from now on, whichever model serves: micro-batching at work. */
  observeModelCalls(observer: (images: number) => void): void {
    this.modelCallObservers.push(observer);
  }

  /** The classifier to use now (loads the promoted model, or zero-shot, on first use). */
  async classifier(): Promise<Classifier> {
    if (this.active) return this.active;
    return this.refresh();
  }

  async refresh(): Promise<Classifier> {
    if (!this.loading) {
      this.loading = this.loadCurrent().finally(() => {
        this.loading = undefined;
      });
      return this.loading;
    }
    // The load under way may have read the database before the change that prompted this call (a promotion
    // racing a poll): one more load follows it, shared by every caller in the meantime.
    this.loadingAgain ??= this.loading
      .catch(() => undefined)
      .then(() => {
        this.loadingAgain = undefined;
        return this.refresh();
      });
    return this.loadingAgain;
  }

  private async loadCurrent(): Promise<Classifier> {
    const current = await this.deps.db.models.current();
    const wanted = current?.id ?? 'zero-shot';
    if (this.active?.modelId === wanted) return this.active;
    const next = batchPredictions(
      current
        ? await loadClassifier(this.deps, current)
        : await zeroShotClassifier(await this.deps.backbones.get(this.deps.defaultBackbone)),
      { onModelCall: (images) => this.modelCallObservers.forEach((observe) => observe(images)) },
    );
    const previous = this.active;
    this.active = next;
    this.deps.logger.info({ modelId: next.modelId, version: next.version, previous: previous?.modelId }, 'serving model loaded');
    warnOnOtherDecode(this.deps.logger, next);
    // In-flight requests may still hold the previous classifier; give them time before freeing its tensors.
    if (previous) setTimeout(() => previous.dispose(), 30_000).unref();
    return next;
  }

  startWatching(intervalMs = 2_000): void {
    // The same failure (e.g. an unreachable backbone URL) repeats every poll: log it when it starts and when it ends.
    let lastFailure: string | undefined;
    this.timer = setInterval(() => {
      this.refresh().then(
        () => {
          if (lastFailure) this.deps.logger.info('loading the serving model works again');
          lastFailure = undefined;
        },
        (error: unknown) => {
          const message = error instanceof Error ? error.message : String(error);
          if (message !== lastFailure) this.deps.logger.error({ err: error }, 'loading the serving model failed; still serving the previous one, if any');
          lastFailure = message;
        },
      );
    }, intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/**
 * Typically the model was trained where catdog's native JPEG decoder was built and serves where it was not (or the
 * reverse). Its answers shift by a hair, not enough to refuse it (docs/benchmarks.md measures the decodes), but its
 * recorded accuracy was measured on the other pixels. A model without a record (imported, or registered before
 * catdog kept one) is not judged.
 */
function warnOnOtherDecode(logger: Logger, classifier: Classifier): void {
  const trainedOn = classifier.card?.decodeId;
  if (trainedOn === undefined || trainedOn === DECODE_ID) return;
  logger.warn(
    { modelId: classifier.modelId, version: classifier.version, trainedOn, servingDecode: DECODE_ID },
    `model ${classifier.modelId} was trained on pixels from the image decode ${trainedOn}, but this process decodes photos with ${DECODE_ID}: ` +
      'its answers may differ slightly from those its metrics were measured on (build native/jpeg-decode alike on both machines, or retrain here)',
  );
}
