import { evaluatedRunMetrics, type RunRow } from '../db/index.js';
import type { BinaryMetrics } from '../ml/index.js';
import { degenerateVerdict } from '../registry/degenerate.js';

/** Something wrong with what a run produced although the run itself succeeded. */
export interface RunWarning {
  /** Stable, for clients to branch on. */
  code: 'degenerate_model';
  /** Short enough for a status: "degenerate: predicts only cat". */
  summary: string;
  /** The evidence, for whoever decides what to do about it. */
  reason: string;
}

/** The warnings of a model's test results: one that answers one class for every test photo is useless. */
export function modelWarnings(metrics: Pick<BinaryMetrics, 'confusionMatrix'>): RunWarning[] {
  const degenerate = degenerateVerdict(metrics);
  return degenerate ? [{ code: 'degenerate_model', summary: degenerate.summary, reason: degenerate.reason }] : [];
}

/**
 * The warnings of a run's outcome: a succeeded run whose model answers one class for every test photo produced a
 * useless model (registered but never promoted automatically), which a plain "succeeded" hides.
 */
export function runWarnings(run: Pick<RunRow, 'status' | 'metrics'>): RunWarning[] {
  const evaluated = run.status === 'succeeded' ? evaluatedRunMetrics(run.metrics) : undefined;
  return evaluated === undefined ? [] : modelWarnings(evaluated);
}
