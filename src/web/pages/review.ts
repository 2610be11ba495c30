import type { ServerDeps } from '../../server/context.js';
import { reviewProgress } from '../../serving/review.js';
import { html } from '../html.js';
import { page } from '../layout.js';
import type { CurationView } from './gallery.js';

/** `actor`: whose skips the counts leave out (see reviewerOf). */
export async function reviewPage({ app }: ServerDeps, view: CurationView & { actor: string }) {
  const progress = await reviewProgress(app, view.actor);
  return page({
    user: view.user,
    title: 'Review',
    path: '/review',
    scripts: ['api-error.js', 'review.js'],
    body: html`
<section class="card review" data-can-label="${view.canCurate ? 'true' : 'false'}">
  <p class="progress-line"><span id="validated-count">${progress.validated}</span> validated · <span id="pending-count">${progress.pending}</span> photos to label
    <span id="skipped-line"${progress.skipped === 0 ? html` hidden` : ''}>· <span id="skipped-count">${progress.skipped}</span> skipped
      ${view.canCurate ? html`<button type="button" class="secondary" id="restore-skips">bring them back</button>` : ''}</span>
    <label class="strategy">order
      <select id="strategy">
        <option value="uncertain">least certain first</option>
        <option value="oldest">oldest first</option>
        <option value="random">random</option>
      </select>
    </label>
  </p>
  <div id="review-item" hidden>
    <div class="review-panel"><img id="review-image" class="review-image" alt="photo to review"></div>
    <p id="review-verdict" class="verdict"></p>
    <p id="review-details" class="muted"></p>
    ${view.canCurate
      ? html`<div class="actions">
      <button type="button" id="accept" class="accept"><kbd>A</kbd> Accept <span id="accept-label"></span></button>
      <button type="button" data-label="cat"><kbd>C</kbd> Cat</button>
      <button type="button" data-label="dog"><kbd>D</kbd> Dog</button>
      <button type="button" data-label="neither"><kbd>N</kbd> Neither</button>
      <button type="button" id="skip"><kbd>S</kbd> Skip</button>
      <button type="button" id="undo" disabled><kbd>U</kbd> Undo</button>
    </div>`
      : html`<p class="muted" id="read-only-note">You can look at the queue; labelling needs the curator role.</p>`}
  </div>
  <p id="review-empty" class="muted" hidden>Nothing left to review. Upload photos on the Predict page.</p>
  <p id="review-status" class="muted" aria-live="polite"></p>
</section>`,
  });
}
