import { listDatasetVersions } from '../../datasets/catalog.js';
import { evaluatedRunMetrics, type RunRow } from '../../db/index.js';
import { degenerateReason } from '../../registry/degenerate.js';
import type { ServerDeps } from '../../server/context.js';
import { queuedRunCount, recentRuns } from '../../training/history.js';
import { runWarnings } from '../../training/warnings.js';
import { html, type SafeHtml } from '../html.js';
import { gate, page, percent } from '../layout.js';
import type { WebUser } from '../user.js';

const HISTORY_SIZE = 30;

/** Whether the run's model went into service, and why not when it did not (degenerate models never do). */
function promotionCell(run: RunRow): SafeHtml {
  const metrics = evaluatedRunMetrics(run.metrics);
  if (run.status !== 'succeeded' || !metrics) return html``;
  const degenerate = degenerateReason(metrics);
  if (degenerate) return html`<span class="flag degenerate">not promoted: ${degenerate}</span>`;
  return metrics.promoted ? html`promoted` : html`<span class="muted">not promoted: did not beat the serving model</span>`;
}

/** A succeeded run whose model is useless (degenerate) shows as a warning, not as a plain success. */
function statusCell(run: RunRow): SafeHtml {
  const [warning] = runWarnings(run);
  if (warning) return html`<span class="status warning" title="${warning.reason}">${run.status} — ${warning.summary}</span>`;
  return html`<span class="status ${run.status}">${run.status}</span>${run.error ? html` <span class="muted">${run.error}</span>` : ''}`;
}

/** The history panel; the page refreshes its table when a run is queued, starts or a followed run ends. */
export function historySection(runs: RunRow[]): SafeHtml {
  // The panel stays and only its table is swapped: htmx sends a refresh asked for while one is in flight after that
  // one's swap, and drops it if the swap replaced the panel, so a run's "started" refresh was lost and its row said
  // queued until the run ended. Its controls (the compare boxes) inherit none of this.
  return html`<div id="history" hx-get="/training/history" hx-trigger="catdog:runs-changed from:body" hx-swap="innerHTML" hx-disinherit="*">${historyTable(runs)}</div>`;
}

/** The history table alone, what the panel's refresh swaps in. */
export const trainingHistory = async ({ app }: ServerDeps): Promise<SafeHtml> => historyTable(await recentRuns(app, HISTORY_SIZE));

function historyTable(runs: RunRow[]): SafeHtml {
  if (runs.length === 0) return html`<p class="muted">No training run yet.</p>`;
  return html`<table id="run-history">
<thead><tr><th>compare</th><th>run</th><th>status</th><th>dataset</th><th>architecture</th><th>epochs</th><th>learning rate</th><th>batch</th><th>test accuracy</th><th>promotion</th><th>model</th><th>created</th></tr></thead>
<tbody>${runs.map(
    (run) => html`<tr data-run-id="${run.id}">
<td><input type="checkbox" name="compare" value="${run.id}" aria-label="compare ${run.id}"></td>
<td><code>${run.id}</code></td>
<td>${statusCell(run)}</td>
<td>v${run.datasetId}</td>
<td>${run.params.architecture}</td>
<td>${String(run.params.epochs)}</td>
<td>${String(run.params.learningRate)}</td>
<td>${String(run.params.batchSize)}</td>
<td>${percent(evaluatedRunMetrics(run.metrics)?.accuracy)}</td>
<td class="promotion">${promotionCell(run)}</td>
<td>${run.modelId ? html`<a href="/models?model=${run.modelId}">${run.modelId}</a>` : ''}</td>
<td>${run.createdAt.slice(0, 19).replace('T', ' ')}</td>
</tr>`,
  )}</tbody></table>`;
}

export async function trainingPage({ app }: ServerDeps, user: WebUser) {
  const [history, versions, queued] = await Promise.all([recentRuns(app, HISTORY_SIZE), listDatasetVersions(app), queuedRunCount(app)]);
  const start = gate(user, 'POST', '/api/v1/training-runs');
  const inProgress = history.find((run) => run.status === 'running' || run.status === 'queued');
  const { training } = app.config;
  return page({
    title: 'Training',
    path: '/training',
    charts: true,
    scripts: ['training.js'],
    user,
    body: html`
<form id="train-form" class="card">
  <h2>Start a run</h2>
  <div class="fields">
    <label>Dataset
      <select name="datasetId">
        <option value="">current labels (build or reuse a version)</option>
        ${versions.map((version) => html`<option value="${version.id}">v${version.id} · ${version.imageCount} photos</option>`)}
      </select>
    </label>
    <label>Architecture
      <select name="architecture">
        <option value="mobilenet"${training.architecture === 'mobilenet' ? html` selected` : ''}>mobilenet (transfer learning)</option>
        <option value="cnn"${training.architecture === 'cnn' ? html` selected` : ''}>cnn (from scratch)</option>
      </select>
    </label>
    <label>Epochs <input name="epochs" type="number" min="1" max="1000" value="${training.epochs}"></label>
    <label>Learning rate <input name="learningRate" type="number" min="0.000001" max="1" step="any" value="${training.learningRate}"></label>
    <label>Batch size <input name="batchSize" type="number" min="1" max="1024" value="${training.batchSize}"></label>
    <label>Image size <input name="imageSize" type="number" min="16" max="512" placeholder="${String(app.config.dataset.imageSize ?? 'architecture default')}" title="cnn only: a backbone takes its own input size"></label>
  </div>
  <button type="submit"${start.attributes}>Start training</button>${start.hint}
  <p id="train-error" class="notice error" hidden></p>
</form>
<section class="card" id="live" data-follow-run="${inProgress?.id ?? ''}" data-last-run="${inProgress ? '' : (history[0]?.id ?? '')}">
  <h2>Live</h2>
  <progress id="run-progress" max="1" value="0" hidden></progress>
  <p id="run-status" class="muted" aria-live="polite">${inProgress ? `following ${inProgress.id}` : 'no run in progress'}${queued > 0 ? ` (${queued} queued)` : ''}</p>
  <div class="charts">
    <div class="chart"><canvas id="loss-chart" role="img" aria-label="loss per epoch"></canvas></div>
    <div class="chart"><canvas id="accuracy-chart" role="img" aria-label="accuracy per epoch"></canvas></div>
  </div>
</section>
<section class="card">
  <h2>History</h2>
  ${historySection(history)}
  <button type="button" id="compare-button">Compare the two selected runs</button>
  <p id="compare-status" class="muted"></p>
  <table id="compare-params" hidden></table>
  <div class="charts">
    <div class="chart"><canvas id="compare-accuracy-chart" role="img" aria-label="validation accuracy per epoch of the compared runs"></canvas></div>
    <div class="chart"><canvas id="compare-loss-chart" role="img" aria-label="validation loss per epoch of the compared runs"></canvas></div>
  </div>
</section>`,
  });
}
