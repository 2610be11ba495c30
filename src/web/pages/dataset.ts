import type { AugmentationConfig } from '../../images/index.js';
import type { DatasetVersionRow, ImageListFilter } from '../../db/index.js';
import { galleryPage, labelledPhotos } from '../../datasets/curation.js';
import { classBalance, listVersions } from '../../datasets/health.js';
import { manifestMissing, type SplitCounts } from '../../datasets/versions.js';
import { CatdogError } from '../../errors.js';
import type { ServerDeps } from '../../server/context.js';
import { augmentedSamples, trainingImageSettingsFrom } from '../../server/dataset-tools.js';
import { presentSuspiciousImage, thumbnailUrl } from '../../server/present.js';
import { findModel } from '../../registry/resolve.js';
import { suspiciousLabels, type SuspiciousImage } from '../../training/suspicious.js';
import { html, type SafeHtml } from '../html.js';
import { curationControls, type CurationView } from './gallery.js';
import { gate, page, percent, type ActionGate } from '../layout.js';

type AugmentationName = keyof AugmentationConfig;

/** The training preview's augmentation controls: one checkbox and one amount per augmentation. */
export const AUGMENTATION_FIELDS: readonly { name: AugmentationName; label: string; amount: string; max: number; step: number }[] = [
  { name: 'horizontalFlip', label: 'Horizontal flip (probability)', amount: 'probability', max: 1, step: 0.05 },
  { name: 'rotation', label: 'Rotation (max degrees)', amount: 'maxDegrees', max: 180, step: 1 },
  { name: 'zoom', label: 'Zoom (max fraction)', amount: 'maxFraction', max: 0.5, step: 0.01 },
  { name: 'brightness', label: 'Brightness (max change)', amount: 'maxDelta', max: 1, step: 0.01 },
  { name: 'contrast', label: 'Contrast (max change)', amount: 'maxFraction', max: 1, step: 0.01 },
  { name: 'grayscale', label: 'Grayscale (probability)', amount: 'probability', max: 1, step: 0.05 },
];

const PREVIEW_SAMPLES = 6;
const THUMBNAILS_PER_PAGE = 24;
const SUSPICIOUS_SHOWN = 12;

const optionalNumber = (text: string | undefined): number | undefined => (text === undefined || text.trim() === '' ? undefined : Number(text));

/** The build form's fields as the API's BuildDataset request; datasetParamsFrom validates the result. */
export function buildRequestFromForm(form: Record<string, string | undefined>) {
  const train = optionalNumber(form.train);
  const validation = optionalNumber(form.validation);
  const test = optionalNumber(form.test);
  return {
    split: train === undefined || validation === undefined || test === undefined ? undefined : { train, validation, test },
    seed: optionalNumber(form.seed),
  };
}

/** The training preview's fields; trainingImageSettingsFrom validates the result. */
function previewRequestFromForm(form: Record<string, string | undefined>) {
  const augmentation = Object.fromEntries(
    AUGMENTATION_FIELDS.map(({ name, amount }) => [name, { enabled: form[`${name}.enabled`] === 'on', [amount]: optionalNumber(form[`${name}.${amount}`]) }]),
  );
  return { imageSize: optionalNumber(form.imageSize) ?? null, augmentation };
}

function splitTable(counts: SplitCounts): SafeHtml {
  const splits = ['train', 'validation', 'test'] as const;
  return html`<table class="counts">
<thead><tr><th>split</th><th>cat</th><th>dog</th><th>total</th></tr></thead>
<tbody>${splits.map((split) => html`<tr><th>${split}</th><td>${counts[split].cat}</td><td>${counts[split].dog}</td><td>${counts[split].cat + counts[split].dog}</td></tr>`)}</tbody>
</table>`;
}

export function versionsSection(versions: DatasetVersionRow[], notice?: { kind: 'ok' | 'error'; text: string }): SafeHtml {
  return html`<section id="versions" class="card">
<h2>Versions</h2>
${notice ? html`<p class="notice ${notice.kind}" role="status">${notice.text}</p>` : ''}
${versions.length === 0
    ? html`<p class="muted">No version yet: label some photos, then build one below.</p>`
    : html`<table tabindex="0" aria-label="dataset versions"><thead><tr><th>version</th><th>created</th><th>images</th><th>split train/val/test · seed</th><th>train cat/dog</th><th>test cat/dog</th></tr></thead>
<tbody>${versions.map((version) => {
        const { counts } = version;
        return html`<tr><td>v${version.id}</td><td>${version.createdAt.slice(0, 19).replace('T', ' ')}</td><td>${version.imageCount}</td><td>${version.params.split.train}/${version.params.split.validation}/${version.params.split.test} · ${version.params.seed}</td><td>${counts.train.cat}/${counts.train.dog}</td><td>${counts.test.cat}/${counts.test.dog}</td></tr>`;
      })}</tbody></table>`}
</section>`;
}

export async function thumbnailsFragment({ app }: ServerDeps, filter: { label?: ImageListFilter['label']; offset: number }): Promise<SafeHtml> {
  const pageOfImages = await galleryPage(app, { label: filter.label, order: 'newest', limit: THUMBNAILS_PER_PAGE, offset: filter.offset }, '');
  const next = filter.offset + THUMBNAILS_PER_PAGE;
  const query = (offset: number) => `/dataset/thumbnails?label=${filter.label ?? ''}&offset=${offset}`;
  return html`<div id="thumbnails">
<p class="muted">${pageOfImages.total} photos${filter.label ? html` labelled ${filter.label}` : ''}</p>
<ul class="thumbnails">${pageOfImages.items.map(
    (image) => html`<li><img src="${thumbnailUrl(image.hash)}" alt="${image.label ?? 'unlabelled'} photo" loading="lazy"><span class="tag ${image.label ?? 'none'}">${image.label ?? 'unlabelled'}</span></li>`,
  )}</ul>
<p class="pager">
${filter.offset > 0 ? html`<button type="button" hx-get="${query(Math.max(0, filter.offset - THUMBNAILS_PER_PAGE))}" hx-target="#thumbnails" hx-swap="outerHTML">previous</button>` : ''}
${next < pageOfImages.total ? html`<button type="button" hx-get="${query(next)}" hx-target="#thumbnails" hx-swap="outerHTML">next</button>` : ''}
</p>
</div>`;
}

export async function previewFragment(deps: ServerDeps, form: Record<string, string | undefined>): Promise<SafeHtml> {
  let params;
  try {
    params = trainingImageSettingsFrom(deps.app.config, previewRequestFromForm(form));
  } catch (error) {
    return html`<p class="notice error">${(error as Error).message}</p>`;
  }
  const labelled = await labelledPhotos(deps.app);
  if (labelled.length === 0) return html`<p class="muted">No labelled photos yet.</p>`;
  const samples = await augmentedSamples(deps.app, labelled, params, PREVIEW_SAMPLES);
  return html`<ul class="preview">${samples.map((sample) => html`<li><img src="${sample.dataUrl}" alt="augmented ${sample.label}"></li>`)}</ul>`;
}

/** The promoted model's judgement of the training photos it learnt from: the ones it disagrees with most. */
export async function suspiciousFragment({ app }: ServerDeps): Promise<SafeHtml> {
  const model = await findModel(app, 'current');
  if (!model) return html`<p class="muted">No model is promoted yet: once one is trained, the training photos it disagrees with most are listed here.</p>`;
  let images: SuspiciousImage[];
  try {
    images = await suspiciousLabels(app, model.datasetId, SUSPICIOUS_SHOWN);
  } catch (error) {
    // htmx swaps only 2xx answers: the reason goes where the list would have been.
    if (!(error instanceof CatdogError)) throw error;
    return html`<p class="notice error">${error.message}</p>`;
  }
  return html`<p class="muted">Training photos of dataset v${model.datasetId} whose label model v${model.version} finds least likely: look at these first for wrong labels and photos of neither.</p>
<ul class="thumbnails" id="suspicious-list">${images.map(presentSuspiciousImage).map(
    (image) => html`<li data-hash="${image.hash}"><button type="button" class="open" data-hash="${image.hash}" data-url="${image.imageUrl}" data-name="${image.hash.slice(0, 12)}" data-label="${image.label}" data-split="train" data-source="dataset v${model.datasetId}" data-size="" data-pdog="${image.pDog.toFixed(4)}" aria-label="view the photo labelled ${image.label} large"><img src="${image.thumbnailUrl}" alt="photo labelled ${image.label}" loading="lazy"></button><span class="tag ${image.label}">${image.label}</span><span class="p-label" title="the model's probability of the stored label">P(${image.label}) ${percent(image.pLabel)}</span></li>`,
  )}</ul>
<p><a href="/dataset/gallery?order=suspicious">All photos, most suspicious first, in the gallery</a></p>`;
}

function buildForm(deps: ServerDeps, build: ActionGate): SafeHtml {
  const { dataset } = deps.app.config;
  return html`<form id="build-form" class="card" hx-post="/dataset/versions" hx-target="#versions" hx-swap="outerHTML">
<h2>Build a version</h2>
<p class="muted">A version is data only: the labelled photos, their labels and splits. Building again with the same photos, labels, split and seed gives the latest version back.</p>
<div class="fields">
  <label>Train <input name="train" type="number" min="0.01" max="1" step="0.01" value="${dataset.split.train}"></label>
  <label>Validation <input name="validation" type="number" min="0" max="1" step="0.01" value="${dataset.split.validation}"></label>
  <label>Test <input name="test" type="number" min="0.01" max="1" step="0.01" value="${dataset.split.test}"></label>
  <label>Seed <input name="seed" type="number" step="1" value="${dataset.seed}"></label>
</div>
<button type="submit"${build.attributes}>Build version</button>${build.hint}
</form>`;
}

/** Image size and augmentation belong to the training run: this tries settings out, the config decides what runs use. */
function trainingImagesForm(deps: ServerDeps): SafeHtml {
  const { dataset } = deps.app.config;
  return html`<form id="training-images-form" class="card" hx-get="/dataset/preview" hx-trigger="change, submit, load" hx-target="#preview" hx-swap="innerHTML">
<h2>What training sees</h2>
<p class="muted">Image size and augmentation are settings of each training run, not of a version: every run uses dataset.imageSize and dataset.augmentation from the config (a run started from the Training page or <code>catdog train --image-size</code> can set its own image size). Try settings here to preview them.</p>
<div class="fields">
  <label>Image size <input name="imageSize" type="number" min="16" max="512" placeholder="architecture default" value="${dataset.imageSize ?? ''}"></label>
</div>
<fieldset class="augmentations">
  <legend>Augmentation (training split only)</legend>
  ${AUGMENTATION_FIELDS.map(({ name, label, amount, max, step }) => {
    const setting = dataset.augmentation[name] as { enabled: boolean } & Record<string, number | boolean>;
    return html`<div class="augmentation">
      <label><input type="checkbox" name="${name}.enabled"${setting.enabled ? html` checked` : ''}> ${label}</label>
      <input type="number" name="${name}.${amount}" min="0" max="${max}" step="${step}" value="${String(setting[amount])}" aria-label="${label}">
    </div>`;
  })}
</fieldset>
<h3>Preview of augmented training samples</h3>
<div id="preview" aria-live="polite"><p class="muted">loading…</p></div>
</form>`;
}

export async function datasetPage(deps: ServerDeps, view: CurationView) {
  const { blobs } = deps.app;
  const [library, versions] = await Promise.all([classBalance(deps.app), listVersions(deps.app)]);
  const latest = versions[0];
  // The counts come from the database row; only the manifest says training can use this version.
  const lostManifest = latest && !(await blobs.has(latest.manifestKey)) ? manifestMissing(latest) : undefined;
  return page({
    user: view.user,
    title: 'Dataset',
    path: '/dataset',
    scripts: ['api-error.js', 'gallery.js'],
    body: html`
<p class="subnav"><a href="/dataset" aria-current="page">Dataset</a> · <a href="/dataset/gallery">Gallery</a> · <a href="/dataset/health">Health</a></p>
${curationControls(view, { bulk: false })}
<section class="card">
  <h2>Labelled photos</h2>
  <ul class="stats" id="library-counts">
    <li><span class="stat" id="count-cat">${library.cat}</span> cats</li>
    <li><span class="stat" id="count-dog">${library.dog}</span> dogs</li>
    <li><span class="stat" id="count-unlabelled">${library.unlabelled}</span> unlabelled</li>
  </ul>
  ${latest ? html`<h3>Latest version v${latest.id}</h3>${splitTable(latest.counts)}` : ''}
  ${lostManifest ? html`<p class="notice error" id="manifest-missing" role="alert">${lostManifest.message}</p>` : ''}
</section>
${versionsSection(versions)}
<section class="card" id="suspicious">
  <h2>Suspicious labels</h2>
  <div hx-get="/dataset/suspicious" hx-trigger="load" hx-swap="outerHTML"><p class="muted">asking the promoted model…</p></div>
</section>
${buildForm(deps, gate(view.user, 'POST', '/dataset/versions'))}
${trainingImagesForm(deps)}
<section class="card">
  <h2>Photos</h2>
  <form class="filter" hx-get="/dataset/thumbnails" hx-target="#thumbnails" hx-swap="outerHTML" hx-trigger="change">
    <label>Label
      <select name="label"><option value="">all</option><option value="cat">cat</option><option value="dog">dog</option><option value="unlabelled">unlabelled</option></select>
    </label>
    <input type="hidden" name="offset" value="0">
  </form>
  ${await thumbnailsFragment(deps, { offset: 0 })}
</section>`,
  });
}
