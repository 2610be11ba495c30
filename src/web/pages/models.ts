import type { ModelRow, PromotionRow } from '../../db/index.js';
import { DECODE_ID } from '../../images/index.js';
import { readModelCard, type ModelCard } from '../../registry/artifacts.js';
import type { ServerDeps } from '../../server/context.js';
import { html, type SafeHtml } from '../html.js';
import { page, percent } from '../layout.js';
import { servingLabel } from './shared.js';

interface StoredMetrics {
  accuracy?: number;
  precision?: number;
  recall?: number;
  f1?: number;
  rocAuc?: number;
  count?: number;
  confusionMatrix?: { labels: string[]; matrix: number[][] };
}

const HEAT_LEVELS = 10;

/** Rows are the true class, columns the predicted one; each cell's shade is its share of its row. */
function confusionMatrix(metrics: StoredMetrics): SafeHtml {
  const confusion = metrics.confusionMatrix;
  if (!confusion) return html`<p class="muted">No confusion matrix recorded.</p>`;
  const labels = confusion.labels;
  return html`<div class="confusion" role="table" aria-label="confusion matrix">
<div class="row" role="row"><div class="cell corner" role="columnheader">true ↓ / predicted →</div>
${labels.map((label) => html`<div class="cell header" role="columnheader">${label}</div>`)}</div>
${confusion.matrix.map((row, i) => {
    const rowTotal = row.reduce((sum, value) => sum + value, 0) || 1;
    return html`<div class="row" role="row"><div class="cell header" role="rowheader">${labels[i] ?? ''}</div>
${row.map((value) => {
      const level = Math.min(HEAT_LEVELS - 1, Math.floor((value / rowTotal) * HEAT_LEVELS));
      return html`<div class="cell heat-${level}${level >= HEAT_LEVELS / 2 ? ' dark' : ''}" role="cell">${value}</div>`;
    })}</div>`;
  })}
</div>`;
}

/** The model as a file that runs without catdog (raw RGB pixels in, P(dog) out). */
function exportLinks(model: ModelRow): SafeHtml {
  const href = (format: string) => `/api/v1/models/${encodeURIComponent(model.id)}/export?format=${format}`;
  return html`<a href="${href('keras')}" download>Download .keras</a> · <a href="${href('tfjs')}" download>Download TF.js</a>`;
}

export interface RegistryView {
  models: ModelRow[];
  promotions: PromotionRow[];
  servingId: string;
  servingText: string;
}

export async function registryView(deps: ServerDeps): Promise<RegistryView> {
  const { db } = deps.app;
  const [models, promotions, servingId, servingText] = await Promise.all([
    db.models.list(),
    db.models.promotions(),
    deps.models.classifier().then((classifier) => classifier.modelId, () => ''),
    servingLabel(deps),
  ]);
  return { models, promotions, servingId, servingText };
}

export function modelsSection({ models, promotions, servingId, servingText }: RegistryView, notice?: string): SafeHtml {
  const latest = promotions[0];
  const rollbackTarget = latest?.previousModelId ? models.find((model) => model.id === latest.previousModelId) : undefined;
  return html`<section id="models" class="card">
<h2>Registry</h2>
<p>Serving: <strong id="serving-model">${servingText}</strong></p>
${notice ? html`<p class="notice ok" role="status">${notice}</p>` : ''}
${rollbackTarget
    ? html`<p><button type="button" class="secondary" hx-post="/models/${rollbackTarget.id}/promote" hx-target="#models" hx-swap="outerHTML">Roll back to v${rollbackTarget.version}</button></p>`
    : ''}
${models.length === 0
    ? html`<p class="muted">No trained model yet: the zero-shot ImageNet model answers predictions.</p>`
    : html`<table>
<thead><tr><th>version</th><th>model</th><th>architecture</th><th>dataset</th><th>accuracy</th><th>F1</th><th>ROC AUC</th><th>created</th><th>download</th><th>serving</th></tr></thead>
<tbody>${models.map((model) => {
        const metrics = model.metrics as StoredMetrics;
        const serving = model.id === servingId;
        return html`<tr data-model-id="${model.id}"${serving ? html` class="serving"` : ''}>
<td>v${model.version}</td>
<td><a href="/models?model=${model.id}"><code>${model.id}</code></a></td>
<td>${model.architecture}</td>
<td>v${model.datasetId}</td>
<td>${percent(metrics.accuracy)}</td>
<td>${metrics.f1?.toFixed(3) ?? '–'}</td>
<td>${metrics.rocAuc?.toFixed(3) ?? '–'}</td>
<td>${model.createdAt.slice(0, 19).replace('T', ' ')}</td>
<td>${exportLinks(model)}</td>
<td>${serving
          ? html`<span class="status succeeded">serving</span>`
          : html`<button type="button" class="promote" hx-post="/models/${model.id}/promote" hx-target="#models" hx-swap="outerHTML">Promote</button>`}</td>
</tr>`;
      })}</tbody></table>`}
</section>`;
}

/** Which decode made the pixels the model learnt from, and whether this server feeds it the same. */
function decodeLine(model: ModelRow, card: ModelCard | undefined): SafeHtml {
  const trainedOn = card?.decodeId;
  if (trainedOn === undefined) {
    const why = model.architecture === 'imported' ? 'imported: trained outside catdog' : 'unknown: registered before catdog recorded it';
    return html`<p class="muted" id="model-decode">Image decode: ${why}</p>`;
  }
  return html`<p class="muted" id="model-decode">Image decode: <code>${trainedOn}</code>${trainedOn === DECODE_ID
    ? ''
    : html` <span class="notice error">this server decodes photos with <code>${DECODE_ID}</code>, so its pixels differ slightly from those the model was trained and measured on</span>`}</p>`;
}

function modelDetails(model: ModelRow, card: ModelCard | undefined): SafeHtml {
  const metrics = model.metrics as StoredMetrics;
  return html`<section class="card" id="model-details">
<h2>v${model.version} <code>${model.id}</code></h2>
<p class="muted">${model.name}; measured on the test split of dataset v${model.datasetId} (${metrics.count ?? '?'} photos)</p>
${decodeLine(model, card)}
<ul class="stats">
  <li><span class="stat">${percent(metrics.accuracy)}</span> accuracy</li>
  <li><span class="stat">${percent(metrics.precision)}</span> precision (dog)</li>
  <li><span class="stat">${percent(metrics.recall)}</span> recall (dog)</li>
  <li><span class="stat">${metrics.f1?.toFixed(3) ?? '–'}</span> F1</li>
</ul>
<div class="charts">
  <div class="chart"><h3>Confusion matrix</h3>${confusionMatrix(metrics)}</div>
  <div class="chart"><h3>ROC curve</h3><canvas id="roc-chart" data-model-id="${model.id}" aria-label="ROC curve"></canvas><p id="roc-status" class="muted"></p></div>
  <div class="chart"><h3>Reliability</h3><canvas id="reliability-chart" data-model-id="${model.id}" aria-label="reliability diagram"></canvas><p id="reliability-status" class="muted"></p></div>
</div>
</section>`;
}

export async function modelsPage(deps: ServerDeps, selectedId: string | undefined) {
  const registry = await registryView(deps);
  const { models } = registry;
  const selected = models.find((model) => model.id === selectedId) ?? models.find((model) => model.id === registry.servingId) ?? models[0];
  return page({
    title: 'Models',
    path: '/models',
    charts: true,
    scripts: ['models.js'],
    body: html`
${modelsSection(registry)}
${selected ? modelDetails(selected, await readModelCard(deps.app.blobs, selected.artifactPrefix)) : ''}`,
  });
}
