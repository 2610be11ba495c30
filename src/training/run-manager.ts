import type { AppContext } from '../app/context.js';
import type { JsonObject, RunRow } from '../db/index.js';
import { buildDatasetVersion, type DatasetParams } from '../datasets/versions.js';
import { NotFoundError } from '../errors.js';
import { datasetParams, trainingParams, withOverrides, type TrainingOverrides } from './params.js';
import { trainOnDataset, type TrainingEvent, type TrainingParams } from './run-training.js';
import { thisProcessOwner } from '../app/process-owner.js';

export interface RunRequest extends Omit<TrainingOverrides, 'imageSize'> {
  /** Without one, a dataset version is built from the labelled images (or the identical latest one reused). */
  datasetId?: number;
}

export type RunListener = (event: TrainingEvent) => void;

export interface RunSubscription {
  /** Everything this process saw of the run so far, oldest first. */
  replay: TrainingEvent[];
  /** True when `replay` already ends with `finished` or `failed`: nothing more will come. */
  ended: boolean;
  unsubscribe(): void;
}

interface RunState {
  events: TrainingEvent[];
  listeners: Set<RunListener>;
  ended: boolean;
}

interface QueuedRun {
  runId: string;
  datasetId: number;
  params: TrainingParams;
}

export type RunManagerDependencies = Pick<AppContext, 'db' | 'blobs' | 'backbones' | 'codeVersion' | 'config' | 'logger'>;

const isTerminal = (event: TrainingEvent): boolean => event.type === 'finished' || event.type === 'failed';

/**
 * Runs training in this process, one run at a time (training saturates the CPU; two would each take twice as
 * long), queueing the rest. Each run's events are kept in memory, so a page opened mid-run can replay the curve
 * so far before it follows live. Runs are recorded in the database as soon as they are queued, so callers get an
 * id at once.
 */
export class RunManager {
  private readonly queue: QueuedRun[] = [];
  private readonly states = new Map<string, RunState>();
  private active: { runId: string; controller: AbortController; done: Promise<void> } | undefined;
  private stopped = false;

  constructor(
    private readonly deps: RunManagerDependencies,
    private readonly options: { onEvent?: RunListener; keepRuns?: number; actor?: string } = {},
  ) {}

  async submit(request: RunRequest): Promise<RunRow> {
    const datasetId = request.datasetId ?? (await buildDatasetVersion(this.deps, datasetParams(this.deps.config))).version.id;
    const dataset = await this.deps.db.datasets.get(datasetId);
    if (!dataset) throw new NotFoundError('dataset version', datasetId);
    const config = withOverrides(this.deps.config, request);
    // The version fixes image size, seed and augmentation: training follows what the data set was built with.
    const params = trainingParams(config, dataset.params as unknown as DatasetParams);
    const run = await this.deps.db.runs.create({ datasetId, params: params as unknown as JsonObject, codeVersion: this.deps.codeVersion, owner: thisProcessOwner() });
    this.stateOf(run.id);
    this.queue.push({ runId: run.id, datasetId, params });
    this.startNext();
    return run;
  }

  /** Runs waiting behind the active one. */
  get queueDepth(): number {
    return this.queue.length;
  }

  get activeRunId(): string | undefined {
    return this.active?.runId;
  }

  /** Undefined for runs this process never ran (earlier processes, the CLI): their history is in the database. */
  subscribe(runId: string, listener: RunListener): RunSubscription | undefined {
    const state = this.states.get(runId);
    if (!state) return undefined;
    if (!state.ended) state.listeners.add(listener);
    return { replay: [...state.events], ended: state.ended, unsubscribe: () => state.listeners.delete(listener) };
  }

  /** Cancels queued runs and aborts the active one (it is recorded as cancelled), then waits for it to stop. */
  async stop(): Promise<void> {
    this.stopped = true;
    for (const queued of this.queue.splice(0)) {
      await this.deps.db.runs.finish(queued.runId, { status: 'cancelled', error: 'server shut down before the run started' });
      this.record({ type: 'failed', runId: queued.runId, error: 'cancelled: the server shut down before the run started' });
    }
    const active = this.active;
    if (active) {
      active.controller.abort();
      await active.done;
    }
  }

  private stateOf(runId: string): RunState {
    let state = this.states.get(runId);
    if (!state) {
      state = { events: [], listeners: new Set(), ended: false };
      this.states.set(runId, state);
      this.forgetOldRuns();
    }
    return state;
  }

  private forgetOldRuns(): void {
    const keep = this.options.keepRuns ?? 20;
    for (const [runId, state] of this.states) {
      if (this.states.size <= keep) break;
      if (state.ended) this.states.delete(runId);
    }
  }

  private record(event: TrainingEvent): void {
    const state = this.stateOf(event.runId);
    const last = state.events.at(-1);
    // Stage progress arrives per batch of images; replay needs only the latest count of the current stage.
    if (event.type === 'stage' && last?.type === 'stage' && last.stage === event.stage) state.events[state.events.length - 1] = event;
    else state.events.push(event);
    if (isTerminal(event)) state.ended = true;
    for (const listener of state.listeners) listener(event);
    if (state.ended) state.listeners.clear();
    this.options.onEvent?.(event);
  }

  private startNext(): void {
    if (this.active || this.stopped) return;
    const next = this.queue.shift();
    if (!next) return;
    const controller = new AbortController();
    const done = this.execute(next, controller.signal).finally(() => {
      this.active = undefined;
      this.startNext();
    });
    this.active = { runId: next.runId, controller, done };
  }

  private async execute(run: QueuedRun, signal: AbortSignal): Promise<void> {
    let started = false;
    try {
      await trainOnDataset(this.deps, {
        runId: run.runId,
        datasetId: run.datasetId,
        params: run.params,
        signal,
        actor: this.options.actor ?? 'api',
        onEvent: (event) => {
          if (event.type === 'started') started = true;
          this.record(event);
        },
      });
    } catch (error) {
      const message = (error as Error).message;
      this.deps.logger.error({ err: error, runId: run.runId }, 'training run failed');
      // trainOnDataset records failures once the run has started; before that, the queued row is ours to close.
      if (!started) {
        await this.deps.db.runs.finish(run.runId, { status: 'failed', error: message }).catch(() => undefined);
        this.record({ type: 'failed', runId: run.runId, error: message });
      }
    }
  }
}
