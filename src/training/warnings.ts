import type { RunRow } from '../db/index.js';
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

/**
 * The warnings of a run's outcome: a succeeded run whose model answers one class for every test photo produced a
 * useless model (registered but never promoted automatically), which a plain "succeeded" hides.
 */
export function runWarnings(run: Pick<RunRow, 'status' | 'metrics'>): RunWarning[] {
  if (run.status !== 'succeeded') return [];
  const degenerate = degenerateVerdict(run.metrics);
  return degenerate ? [{ code: 'degenerate_model', summary: degenerate.summary, reason: degenerate.reason }] : [];
}
