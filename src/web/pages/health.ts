import { changedLabelCount, datasetHealth, type ChangeCounts, type DatasetHealth, type PagedDifference } from '../../datasets/health.js';
import { NEAR_DUPLICATE_DISTANCE } from '../../images/index.js';
import type { ServerDeps } from '../../server/context.js';
import { thumbnailUrl } from '../../server/present.js';
import { html, type SafeHtml } from '../html.js';
import { page } from '../layout.js';
import { curationControls, photoTile, type CurationView } from './gallery.js';

const GROUPS_SHOWN = 40;
const DIFFERENCE_THUMBNAILS = 12;

const share = (part: number, whole: number) => (whole === 0 ? '–' : `${Math.round((part / whole) * 100)}%`);

function balanceSection({ cat, dog, unlabelled }: { cat: number; dog: number; unlabelled: number }): SafeHtml {
  const labelled = cat + dog;
  const minority = Math.min(cat, dog);
  return html`<section class="card" id="balance">
<h2>Class balance</h2>
<div class="balance-bar" role="img" aria-label="${cat} cats, ${dog} dogs">
  <span class="cat" data-share="${share(cat, labelled)}">${cat} cats · ${share(cat, labelled)}</span>
  <span class="dog" data-share="${share(dog, labelled)}">${dog} dogs · ${share(dog, labelled)}</span>
</div>
<progress class="balance" max="${Math.max(1, labelled)}" value="${cat}" aria-label="share of cats"></progress>
<p class="muted">${unlabelled} photos without a label (waiting in the review queue or marked neither).</p>
${labelled > 0 && minority / labelled < 0.4 ? html`<p class="notice error" id="imbalance">The ${cat < dog ? 'cats' : 'dogs'} are only ${share(minority, labelled)} of the labelled photos: label more of them, or the model learns to prefer the other class.</p>` : ''}
</section>`;
}

function differenceCounts(counts: ChangeCounts): SafeHtml {
  return html`<ul class="stats difference">
<li><span class="stat" data-kind="added">${counts.added}</span> added</li>
<li><span class="stat" data-kind="removed">${counts.removed}</span> removed</li>
<li><span class="stat" data-kind="relabelled">${counts.relabelled}</span> relabelled</li>
</ul>`;
}

const thumbnails = (hashes: readonly { hash: string; label: string }[]) =>
  html`<ul class="thumbnails small">${hashes.slice(0, DIFFERENCE_THUMBNAILS).map(
    ({ hash, label }) => html`<li><img src="${thumbnailUrl(hash)}" alt="${label} photo" loading="lazy"><span class="tag ${label}">${label}</span></li>`,
  )}</ul>`;

function changesSection(pending: DatasetHealth['sinceLatest'], view: CurationView): SafeHtml {
  if (!pending) return html`<section class="card" id="changes"><h2>Since the latest version</h2><p class="muted">No version is built yet.</p></section>`;
  const { versionId, counts } = pending;
  const total = changedLabelCount(counts);
  return html`<section class="card" id="changes">
<h2>Since the latest version</h2>
${total === 0
    ? html`<p class="muted" id="changes-summary">No label changed since v${versionId}.</p>`
    : html`<p class="notice ok" id="changes-summary">${total} new labels since v${versionId}${view.canCurate ? html` — <a href="/dataset#build-form">build a version</a>, then <a href="/training">retrain</a>` : html` (a curator can build a version and retrain)`}.</p>${differenceCounts(counts)}`}
</section>`;
}

function versionDifferenceSection(versions: readonly number[], from: number | undefined, to: number | undefined, difference: PagedDifference | undefined): SafeHtml {
  if (versions.length < 2) return html`<section class="card" id="version-difference"><h2>Difference between two versions</h2><p class="muted">Two versions are needed; ${versions.length === 0 ? 'none is' : 'only one is'} built.</p></section>`;
  const options = (chosen: number | undefined) => versions.map((id) => html`<option value="${id}"${id === chosen ? html` selected` : ''}>v${id}</option>`);
  return html`<section class="card" id="version-difference">
<h2>Difference between two versions</h2>
<form class="filter" method="get" action="/dataset/health#version-difference">
  <label>from <select name="from">${options(from)}</select></label>
  <label>to <select name="to">${options(to)}</select></label>
  <button type="submit" class="secondary">Compare</button>
</form>
${difference
    ? html`${differenceCounts(difference.counts)}
<h3>Added</h3>${thumbnails(difference.changes.added)}
<h3>Removed</h3>${thumbnails(difference.changes.removed)}
<h3>Relabelled</h3>${thumbnails(difference.changes.relabelled.map(({ hash, to: label }) => ({ hash, label })))}`
    : ''}
</section>`;
}

export interface HealthForm {
  from?: string;
  to?: string;
}

const versionNumber = (text: string | undefined) => (text && /^\d+$/.test(text) ? Number(text) : undefined);

export async function healthPage(deps: ServerDeps, view: CurationView, form: HealthForm): Promise<SafeHtml> {
  // One page is all the view shows: the first groups (fix those first), and fewer thumbnails than that of each list of changes.
  const [{ balance, notHashed, nearDuplicates, sinceLatest: pending, versionIds: ids, comparison }, { modelId }] = await Promise.all([
    datasetHealth(deps.app, { from: versionNumber(form.from), to: versionNumber(form.to) }, { limit: GROUPS_SHOWN, offset: 0 }),
    deps.models.classifier(),
  ]);
  return page({
    user: view.user,
    title: 'Dataset health',
    path: '/dataset',
    scripts: ['api-error.js', 'gallery.js'],
    body: html`
<p class="subnav"><a href="/dataset">Dataset</a> · <a href="/dataset/gallery">Gallery</a> · <a href="/dataset/health" aria-current="page">Health</a></p>
${balanceSection(balance)}
${changesSection(pending, view)}
<section class="card" id="duplicates">
  <h2>Near-duplicates</h2>
  <p class="muted">Photos whose perceptual hashes (64-bit dHash) are at most ${NEAR_DUPLICATE_DISTANCE} bits apart: the same picture resized, re-encoded or lightly edited. Distance 0 is the same picture stored as different bytes.
  ${notHashed > 0 ? html` <strong id="not-hashed">${notHashed} photos are not hashed yet: reload to hash the next ones.</strong>` : ''}</p>
  <p id="duplicate-summary"><span id="group-count">${nearDuplicates.total}</span> groups, <span id="conflict-count">${nearDuplicates.conflicting}</span> with conflicting labels.</p>
  ${curationControls(view, { bulk: true })}
  <ol class="duplicate-groups">${nearDuplicates.groups.map(
    (group) => html`<li class="duplicate-group${group.conflicting ? ' conflicting' : ''}">
<p>${group.conflicting ? html`<strong class="conflict">conflicting labels</strong> · ` : ''}${group.members.length} photos · ${group.distance === 0 ? 'identical hash' : `${group.distance} bit${group.distance === 1 ? '' : 's'} apart`}</p>
<ul class="thumbnails">${group.members.map((member) => photoTile(member, view, modelId))}</ul>
</li>`,
  )}</ol>
  ${nearDuplicates.total > GROUPS_SHOWN ? html`<p class="muted">${nearDuplicates.total - GROUPS_SHOWN} more groups: fix these first.</p>` : ''}
</section>
${versionDifferenceSection(ids, comparison?.from, comparison?.to, comparison)}`,
  });
}
