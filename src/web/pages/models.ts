import { listDatasetVersions } from '../../datasets/catalog.js';
import type { DatasetVersionRow, ModelRow, PromotionRow } from '../../db/index.js';
import { DECODE_ID } from '../../images/index.js';
import type { BinaryMetrics } from '../../ml/index.js';
import { readModelCard, type ModelCard } from '../../registry/artifacts.js';
import { registryListing } from '../../registry/catalog.js';
import { MAX_COMPARED_MODELS, type ModelComparison } from '../../registry/comparison.js';
import { degenerateReason, degenerateVerdict } from '../../registry/degenerate.js';
import type { PromotionMetric } from '../../registry/promotion.js';
import type { ServerDeps } from '../../server/context.js';
import { thumbnailUrl } from '../../server/present.js';
import { html, type SafeHtml } from '../html.js';
import { gate, page, percent } from '../layout.js';
import type { WebUser } from '../user.js';
import { servingLabel } from './shared.js';

/** A score from 0 to 1 with three decimals; ROC AUC is undefined (NaN) on a split of one class. */
const score = (value: number): string => (Number.isNaN(value) ? '–' : value.toFixed(3));

const HEAT_LEVELS = 10;

/** Rows are the true class, columns the predicted one; each cell's shade is its share of its row. */
function confusionMatrix(metrics: BinaryMetrics): SafeHtml {
  const confusion = metrics.confusionMatrix;
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
  return html`<span class="downloads"><a href="${href('keras')}" download>.keras</a> · <a href="${href('tfjs')}" download>TF.js</a></span>`;
}

export interface RegistryView {
  models: ModelRow[];
  promotions: PromotionRow[];
  servingId: string;
  servingText: string;
  /** The metric promotion compares (`training.promotion.metric`). */
  metric: PromotionMetric;
  user: WebUser;
}

export async function registryView(deps: ServerDeps, user: WebUser): Promise<RegistryView> {
  const [{ models, promotions }, servingId, servingText] = await Promise.all([
    registryListing(deps.app),
    deps.models.classifier().then((classifier) => classifier.modelId, () => ''),
    servingLabel(deps),
  ]);
  return { models, promotions, servingId, servingText, metric: deps.app.config.training.promotion.metric, user };
}

const METRIC_NAMES: Record<PromotionMetric, string> = { accuracy: 'accuracy', f1: 'F1', rocAuc: 'ROC AUC' };

/**
 * Asked before promoting a model that scores below the serving one or is degenerate; undefined when it does not.
 * Stored metrics come from each model's own test split, which the question says.
 */
function promotionWarning(candidate: ModelRow, serving: ModelRow | undefined, metric: PromotionMetric): string | undefined {
  const degenerate = degenerateReason(candidate.metrics);
  const value = (model: ModelRow) => model.metrics[metric];
  const candidateValue = value(candidate);
  const servingValue = serving ? value(serving) : undefined;
  const drop = candidateValue !== undefined && servingValue !== undefined && candidateValue < servingValue
    ? `Its ${METRIC_NAMES[metric]} ${percent(candidateValue)} is ${((servingValue - candidateValue) * 100).toFixed(1)} points below the serving v${serving!.version}'s ${percent(servingValue)}` +
      (serving!.datasetId === candidate.datasetId ? ' on the same test split.' : ` (measured on dataset v${candidate.datasetId} and v${serving!.datasetId}: compare them on one split below).`)
    : undefined;
  if (!degenerate && !drop) return undefined;
  return [`Promote v${candidate.version}?`, degenerate && `It is ${degenerate}.`, drop].filter(Boolean).join(' ');
}

export function modelsSection({ models, promotions, servingId, servingText, metric, user }: RegistryView, notice?: string): SafeHtml {
  const latest = promotions[0];
  const rollbackTarget = latest?.previousModelId ? models.find((model) => model.id === latest.previousModelId) : undefined;
  const serving = models.find((model) => model.id === servingId);
  const promoteButton = (model: ModelRow, label: string, className: string) => {
    const path = `/models/${model.id}/promote`;
    const allowed = gate(user, 'POST', path);
    const warning = promotionWarning(model, serving, metric);
    return html`<button type="button" class="${className}" hx-post="${path}" hx-target="#models" hx-swap="outerHTML"${warning ? html` hx-confirm="${warning}"` : ''}${allowed.attributes}>${label}</button>${allowed.hint}`;
  };
  return html`<section id="models" class="card">
<h2>Registry</h2>
<p>Serving: <strong id="serving-model">${servingText}</strong></p>
${notice ? html`<p class="notice ok" role="status">${notice}</p>` : ''}
${rollbackTarget ? html`<p>${promoteButton(rollbackTarget, `Roll back to v${rollbackTarget.version}`, 'secondary rollback')}</p>` : ''}
${models.length === 0
    ? html`<p class="muted">No trained model yet: the zero-shot ImageNet model answers predictions.</p>`
    : html`<table class="registry">
<thead><tr><th>version</th><th>model</th><th>dataset</th><th>accuracy</th><th>F1</th><th>ROC AUC</th><th>created</th><th>actions</th></tr></thead>
<tbody>${models.map((model) => {
        const { metrics } = model;
        const degenerate = degenerateVerdict(metrics);
        const isServing = model.id === servingId;
        return html`<tr data-model-id="${model.id}"${isServing ? html` class="serving"` : ''}>
<td>v${model.version}</td>
<td><a href="/models?model=${model.id}"><code>${model.id}</code></a><br><span class="muted">${model.architecture}</span>${degenerate ? html` <span class="flag degenerate" title="${degenerate.reason}">${degenerate.summary}</span>` : ''}</td>
<td>v${model.datasetId}</td>
<td>${percent(metrics.accuracy)}</td>
<td>${score(metrics.f1)}</td>
<td>${score(metrics.rocAuc)}</td>
<td>${model.createdAt.slice(0, 16).replace('T', ' ')}</td>
<td class="actions-cell">${isServing ? html`<span class="status succeeded">serving</span>` : promoteButton(model, 'Promote', 'promote')}<br>${exportLinks(model)}</td>
</tr>`;
      })}</tbody></table>`}
</section>`;
}

/** Pick the models and the one test split they are all scored on; the result lands in #comparison. */
function compareForm(models: ModelRow[], versions: DatasetVersionRow[], chosen: string[]): SafeHtml {
  if (models.length < 2 || versions.length === 0) return html`<p class="muted">Comparing needs two models and a dataset version.</p>`;
  const preselected = new Set(chosen.length > 0 ? chosen : models.slice(0, 2).map((model) => model.id));
  return html`<form id="compare-form" hx-get="/models/compare" hx-target="#comparison" hx-swap="innerHTML">
<fieldset class="compare-models"><legend>Models (2 to ${MAX_COMPARED_MODELS})</legend>
${models.map((model) => html`<label><input type="checkbox" name="model" value="${model.id}"${preselected.has(model.id) ? html` checked` : ''}> v${model.version} <span class="muted">${model.architecture}, trained on v${model.datasetId}</span></label>`)}
</fieldset>
<label>Test split of <select name="dataset">${versions.map((version) => html`<option value="${version.id}">dataset v${version.id} (${version.imageCount} photos)</option>`)}</select></label>
<button type="submit">Compare</button>
</form>`;
}

const DISAGREEMENTS_SHOWN = 24;

/** Metrics, confusion matrices and the photos the models disagree on, all on one test split. */
export function comparisonFragment(comparison: ModelComparison, user: WebUser): SafeHtml {
  const missing = comparison.models.filter((entry) => entry.evaluation === null);
  const scored = comparison.models.filter((entry) => entry.evaluation !== null);
  const evaluate = gate(user, 'POST', '/models/compare');
  return html`<h3 id="comparison-split">On the test split of dataset v${comparison.datasetId} (${comparison.testCount} photos)</h3>
${missing.length > 0
    ? html`<p class="notice">Not yet scored on this split: ${missing.map((entry) => `v${entry.model.version}`).join(', ')}.
<button type="button" id="evaluate-missing" hx-post="/models/compare" hx-include="#compare-form" hx-target="#comparison" hx-swap="innerHTML"${evaluate.attributes}>Score on dataset v${comparison.datasetId}</button>${evaluate.hint}</p>`
    : ''}
${scored.length === 0
    ? ''
    : html`<table class="comparison"><thead><tr><th>model</th><th>accuracy</th><th>precision</th><th>recall</th><th>F1</th><th>ROC AUC</th><th>note</th></tr></thead>
<tbody>${scored.map(({ model, evaluation }) => {
        const metrics = evaluation!.metrics;
        return html`<tr data-compared-model="${model.id}"><td>v${model.version} <span class="muted">${model.architecture}</span></td>
<td>${percent(metrics.accuracy)}</td><td>${percent(metrics.precision)}</td><td>${percent(metrics.recall)}</td><td>${score(metrics.f1)}</td>
<td>${score(metrics.rocAuc)}</td>
<td>${evaluation!.degenerate ? html`<span class="flag degenerate">${evaluation!.degenerate}</span>` : model.datasetId === comparison.datasetId ? 'its own test split' : html`<span class="muted">trained on v${model.datasetId}</span>`}</td></tr>`;
      })}</tbody></table>
<div class="charts">${scored.map(({ model, evaluation }) => html`<div class="chart-small"><h4>v${model.version}</h4>${confusionMatrix(evaluation!.metrics)}</div>`)}</div>`}
${scored.length < 2
    ? ''
    : html`<h3>${comparison.disagreements.length} photos they disagree on</h3>
${comparison.disagreements.length === 0
        ? html`<p class="muted">They label every test photo the same way.</p>`
        : html`<ul class="disagreements">${comparison.disagreements.slice(0, DISAGREEMENTS_SHOWN).map((photo) => html`<li>
<img src="${thumbnailUrl(photo.hash)}" alt="test photo labelled ${photo.label}">
<span class="tag ${photo.label}">${photo.label}</span>
<ul class="verdicts">${scored.map(({ model }, i) => {
            const pDog = photo.pDog[i]!;
            const said = pDog >= 0.5 ? 'dog' : 'cat';
            return html`<li class="${said === photo.label ? 'right' : 'wrong'}">v${model.version}: ${said} ${percent(said === 'dog' ? pDog : 1 - pDog)}</li>`;
          })}</ul></li>`)}</ul>`}`}`;
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

/** Each time the model was put into service and why; a degenerate model says why it never was automatically. */
function promotionLine(model: ModelRow, promotions: PromotionRow[]): SafeHtml {
  const degenerate = degenerateReason(model.metrics);
  const own = promotions.filter((promotion) => promotion.modelId === model.id);
  return html`<p id="model-promotion">${degenerate ? html`<span class="flag degenerate">never promoted automatically: ${degenerate}</span> ` : ''}${own.length === 0
    ? html`<span class="muted">Never promoted.</span>`
    : own.map((promotion) => html`<span class="muted">Promoted ${promotion.promotedAt.slice(0, 16).replace('T', ' ')} by ${promotion.actor}: ${promotion.reason}.</span> `)}</p>`;
}

function modelDetails(model: ModelRow, card: ModelCard | undefined, promotions: PromotionRow[]): SafeHtml {
  const { metrics } = model;
  return html`<section class="card" id="model-details">
<h2>v${model.version} <code>${model.id}</code></h2>
<p class="muted">${model.name}; measured on the test split of dataset v${model.datasetId} (${metrics.count} photos)</p>
${promotionLine(model, promotions)}
${decodeLine(model, card)}
<ul class="stats">
  <li><span class="stat">${percent(metrics.accuracy)}</span> accuracy</li>
  <li><span class="stat">${percent(metrics.precision)}</span> precision (dog)</li>
  <li><span class="stat">${percent(metrics.recall)}</span> recall (dog)</li>
  <li><span class="stat">${score(metrics.f1)}</span> F1</li>
</ul>
<div class="charts">
  <div class="chart"><h3>Confusion matrix</h3>${confusionMatrix(metrics)}</div>
  <div class="chart"><h3>ROC curve</h3><canvas id="roc-chart" data-model-id="${model.id}" aria-label="ROC curve"></canvas><p id="roc-status" class="muted"></p></div>
  <div class="chart"><h3>Reliability</h3><canvas id="reliability-chart" data-model-id="${model.id}" aria-label="reliability diagram"></canvas><p id="reliability-status" class="muted"></p></div>
</div>
</section>`;
}

export async function modelsPage(deps: ServerDeps, user: WebUser, selectedId: string | undefined) {
  const [registry, versions] = await Promise.all([registryView(deps, user), listDatasetVersions(deps.app)]);
  const { models } = registry;
  const selected = models.find((model) => model.id === selectedId) ?? models.find((model) => model.id === registry.servingId) ?? models[0];
  return page({
    title: 'Models',
    path: '/models',
    charts: true,
    scripts: ['models.js'],
    user,
    body: html`
${modelsSection(registry)}
<section class="card" id="compare">
<h2>Compare on one test split</h2>
<p class="muted">Each model's own accuracy is measured on its own dataset version's test split; here every chosen model is scored on the same photos.</p>
${compareForm(models, versions, [])}
<div id="comparison" aria-live="polite"></div>
</section>
${selected ? modelDetails(selected, await readModelCard(deps.app.blobs, selected.artifactPrefix), registry.promotions) : ''}`,
  });
}
