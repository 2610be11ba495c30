import type { Split } from '../../datasets/split.js';
import type { WebUser } from '../user.js';
import { galleryPage, type GalleryPage, type GalleryQuery } from '../../datasets/curation.js';
import type { ImageRow } from '../../db/index.js';
import type { ServerDeps } from '../../server/context.js';
import { imageUrl, thumbnailUrl } from '../../server/present.js';
import { scoringStatus } from '../../serving/scores.js';
import { html, type SafeHtml } from '../html.js';
import { page, percent } from '../layout.js';

export const GALLERY_PAGE_SIZE = 48;

/** What the signed-in role may do on the curation views: a viewer sees photos, never the buttons. */
export interface CurationView {
  canCurate: boolean;
  /** Who is signed in, for the header. */
  user: WebUser;
}

const LABELS = ['cat', 'dog', 'unlabelled'] as const;
const SPLITS = ['train', 'validation', 'test'] as const;
const SOURCES = ['import', 'upload', 'feedback', 'curation'] as const;
const AGREEMENT = ['disagree', 'agree'] as const;
const CONFIDENCE_CEILINGS = ['0.6', '0.75', '0.9'] as const;
const SUSPICION_CEILINGS = ['0.1', '0.25', '0.5'] as const;
const ORDERS = ['newest', 'suspicious'] as const;

export type GalleryForm = Record<string, string | undefined>;

const oneOf = <T extends string>(allowed: readonly T[], value: string | undefined): T | undefined =>
  (allowed as readonly string[]).includes(value ?? '') ? (value as T) : undefined;

/** The filter form's fields as a gallery query; unknown values are no filter. */
export function galleryQueryFrom(form: GalleryForm): GalleryQuery {
  const agreement = oneOf(AGREEMENT, form.agreement);
  const ceiling = oneOf(CONFIDENCE_CEILINGS, form.maxConfidence);
  const suspicion = oneOf(SUSPICION_CEILINGS, form.maxLabelProbability);
  return {
    label: oneOf(LABELS, form.label),
    split: oneOf(SPLITS, form.split),
    sourceKind: oneOf(SOURCES, form.source),
    disagreement: agreement === undefined ? undefined : agreement === 'disagree',
    maxConfidence: ceiling === undefined ? undefined : Number(ceiling),
    maxLabelProbability: suspicion === undefined ? undefined : Number(suspicion),
    order: oneOf(ORDERS, form.order) ?? 'newest',
    limit: GALLERY_PAGE_SIZE,
    offset: Math.max(0, Number.parseInt(form.offset ?? '0', 10) || 0),
  };
}

const labelProbability = (image: Pick<ImageRow, 'label' | 'pDog'>): number | undefined =>
  image.pDog === null || image.label === null ? undefined : image.label === 'dog' ? image.pDog : 1 - image.pDog;

/**
 * One photo as a tile: a button that opens the large view (its data-* attributes fill it) and, for curators, a
 * checkbox for bulk actions. `scoreModelId`: only that model's P(dog) is shown.
 */
export function photoTile(image: ImageRow & { split?: Split }, view: CurationView, scoreModelId: string): SafeHtml {
  const scored = image.scoreModelId === scoreModelId ? image.pDog : null;
  const pLabel = labelProbability({ label: image.label, pDog: scored });
  const name = image.originalName ?? image.hash.slice(0, 12);
  return html`<li class="tile${pLabel !== undefined && pLabel < 0.5 ? ' disagrees' : ''}" data-hash="${image.hash}">
${view.canCurate ? html`<input type="checkbox" class="select" value="${image.hash}" aria-label="select ${name}">` : ''}
<button type="button" class="open" data-hash="${image.hash}" data-url="${imageUrl(image.hash)}" data-name="${name}" data-label="${image.label ?? 'unlabelled'}"
  data-split="${image.split ?? ''}" data-source="${image.source}" data-size="${image.width}×${image.height}" data-pdog="${scored === null ? '' : scored.toFixed(4)}" aria-label="view ${name} large">
<img src="${thumbnailUrl(image.hash)}" alt="${image.label ?? 'unlabelled'} photo ${name}" loading="lazy"></button>
<span class="tag ${image.label ?? 'none'}">${image.label ?? 'unlabelled'}</span>
${pLabel === undefined ? '' : html`<span class="p-label" title="the serving model's probability of the stored label, P(${image.label})">${percent(pLabel)}</span>`}
</li>`;
}

/** The large view and (with `bulk`) the bulk bar, shared by the Dataset, gallery and health views; gallery.js drives them. */
export function curationControls(view: CurationView, { bulk }: { bulk: boolean }): SafeHtml {
  return html`${!bulk ? '' : view.canCurate
    ? html`<div class="bulk-bar" id="bulk-bar" role="toolbar" aria-label="bulk actions">
  <span><span id="selected-count">0</span> selected</span>
  <button type="button" class="secondary" id="select-page">Select page</button>
  <button type="button" class="secondary" id="select-none" disabled>Clear</button>
  <button type="button" data-bulk="cat" disabled>Label cat</button>
  <button type="button" data-bulk="dog" disabled>Label dog</button>
  <button type="button" class="danger" data-bulk="delete" disabled>Delete</button>
  <span id="bulk-status" class="muted" role="status" aria-live="polite"></span>
</div>`
    : html`<p class="muted" id="read-only-note">You can look at the photos; relabelling and deleting need the curator role.</p>`}
<dialog id="photo-view" aria-labelledby="photo-view-name">
  <form method="dialog" class="photo-view-close"><button type="submit" class="secondary" aria-label="close">✕</button></form>
  <img id="photo-view-image" alt="">
  <h2 id="photo-view-name"></h2>
  <p id="photo-view-meta" class="muted"></p>
  ${view.canCurate
    ? html`<div class="actions">
    <button type="button" data-single="cat"><kbd>C</kbd> Cat</button>
    <button type="button" data-single="dog"><kbd>D</kbd> Dog</button>
    <button type="button" class="danger" data-single="delete"><kbd>Del</kbd> Delete</button>
  </div>`
    : ''}
  <p id="photo-view-status" class="muted" role="status" aria-live="polite"></p>
</dialog>`;
}

function galleryQueryString(query: GalleryQuery, offset: number): string {
  const params = new URLSearchParams();
  if (query.label) params.set('label', query.label);
  if (query.split) params.set('split', query.split);
  if (query.sourceKind) params.set('source', query.sourceKind);
  if (query.disagreement !== undefined) params.set('agreement', query.disagreement ? 'disagree' : 'agree');
  if (query.maxConfidence !== undefined) params.set('maxConfidence', String(query.maxConfidence));
  if (query.maxLabelProbability !== undefined) params.set('maxLabelProbability', String(query.maxLabelProbability));
  params.set('order', query.order);
  params.set('offset', String(offset));
  return params.toString();
}

function gridSection(result: GalleryPage, query: GalleryQuery, view: CurationView, scoreModelId: string): SafeHtml {
  const next = query.offset + query.limit;
  const link = (offset: number) => `/dataset/gallery/grid?${galleryQueryString(query, offset)}`;
  const shown = result.items.length === 0 ? 0 : query.offset + 1;
  return html`<div id="gallery-grid" data-reload="${link(query.offset)}">
<p class="muted" id="gallery-total">${result.total} photos${result.total > 0 ? html` · ${shown}–${query.offset + result.items.length} shown` : ''}</p>
${result.items.length === 0 ? html`<p class="muted">No photo matches these filters.</p>` : ''}
<ul class="thumbnails gallery">${result.items.map((image) => photoTile(image, view, scoreModelId))}</ul>
<p class="pager">
${query.offset > 0 ? html`<button type="button" class="secondary" hx-get="${link(Math.max(0, query.offset - query.limit))}" hx-target="#gallery-grid" hx-swap="outerHTML">previous</button>` : ''}
${next < result.total ? html`<button type="button" class="secondary" hx-get="${link(next)}" hx-target="#gallery-grid" hx-swap="outerHTML">next</button>` : ''}
</p>
</div>`;
}

export async function galleryGrid(deps: ServerDeps, form: GalleryForm, view: CurationView): Promise<SafeHtml> {
  const query = galleryQueryFrom(form);
  const { modelId } = await deps.models.classifier();
  return gridSection(await galleryPage({ db: deps.app.db, config: deps.app.config }, query, modelId), query, view, modelId);
}

/** `form` preselects the filters (a link from the Dataset page or the health view may carry some). */
export async function galleryPageView(deps: ServerDeps, view: CurationView, form: GalleryForm): Promise<SafeHtml> {
  const select = (name: string, label: string, options: readonly (readonly [string, string])[]) =>
    html`<label>${label} <select name="${name}">${options.map(
      ([value, text]) => html`<option value="${value}"${(form[name] ?? '') === value ? html` selected` : ''}>${text}</option>`,
    )}</select></label>`;
  const status = await scoringStatus({ db: deps.app.db, blobs: deps.app.blobs, models: deps.models });
  const modelName = status.version === null ? status.modelId : `model v${status.version}`;
  return page({
    user: view.user,
    title: 'Gallery',
    path: '/dataset',
    scripts: ['api-error.js', 'gallery.js'],
    body: html`
<p class="subnav"><a href="/dataset">Dataset</a> · <a href="/dataset/gallery" aria-current="page">Gallery</a> · <a href="/dataset/health">Health</a></p>
<section class="card">
  <form id="gallery-filter" class="filter gallery-filter" hx-get="/dataset/gallery/grid" hx-target="#gallery-grid" hx-swap="outerHTML" hx-trigger="change">
    ${select('label', 'Label', [['', 'all'], ['cat', 'cat'], ['dog', 'dog'], ['unlabelled', 'unlabelled']])}
    ${select('split', 'Split', [['', 'all'], ...SPLITS.map((split) => [split, split] as const)])}
    ${select('source', 'Source', [['', 'all'], ['import', 'folder import'], ['upload', 'upload'], ['feedback', 'review feedback'], ['curation', 'gallery']])}
    ${select('agreement', `${modelName} says`, [['', 'anything'], ['disagree', 'the other label'], ['agree', 'the same label']])}
    ${select('maxConfidence', 'Confidence', [['', 'any'], ['0.6', '≤ 60%'], ['0.75', '≤ 75%'], ['0.9', '≤ 90%']])}
    ${select('maxLabelProbability', 'Suspicious', [['', 'any'], ['0.1', 'P(label) ≤ 10%'], ['0.25', 'P(label) ≤ 25%'], ['0.5', 'P(label) ≤ 50%']])}
    ${select('order', 'Order', [['newest', 'newest first'], ['suspicious', 'most suspicious first']])}
  </form>
  <p id="scoring" class="muted" data-unscored="${status.unscored}">
    ${status.unscored === 0
      ? html`Every labelled photo is scored by the serving model (${modelName}).`
      : html`<span id="unscored-count">${status.unscored}</span> labelled photos are not scored by the serving model (${modelName}) yet: the model filters and the suspicious order leave them out.`}
    ${view.canCurate && status.unscored > 0 ? html`<button type="button" class="secondary" id="score-photos">Score them</button>` : ''}
  </p>
  ${curationControls(view, { bulk: true })}
  ${await galleryGrid(deps, { ...form, offset: '0' }, view)}
</section>`,
  });
}
