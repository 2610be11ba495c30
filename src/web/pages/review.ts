import type { ServerDeps } from '../../server/context.js';
import { html } from '../html.js';
import { page } from '../layout.js';
import type { WebUser } from '../user.js';

export async function reviewPage({ app }: ServerDeps, user: WebUser) {
  const [validated, pending] = await Promise.all([
    app.db.predictions.list({ validated: true, limit: 1, offset: 0 }),
    app.db.predictions.list({ validated: false, limit: 1, offset: 0 }),
  ]);
  return page({
    title: 'Review',
    path: '/review',
    user,
    scripts: ['review.js'],
    body: html`
<section class="card review">
  <p class="progress-line"><span id="validated-count">${validated.total}</span> validated · <span id="pending-count">${pending.total}</span> pending
    <label class="strategy">order
      <select id="strategy">
        <option value="uncertain">least certain first</option>
        <option value="oldest">oldest first</option>
        <option value="random">random</option>
      </select>
    </label>
  </p>
  <div id="review-item" hidden>
    <img id="review-image" class="review-image" alt="photo to review">
    <p id="review-verdict" class="verdict"></p>
    <div class="actions">
      <button type="button" data-label="cat"><kbd>C</kbd> Cat</button>
      <button type="button" data-label="dog"><kbd>D</kbd> Dog</button>
      <button type="button" data-label="neither"><kbd>N</kbd> Neither</button>
      <button type="button" id="skip"><kbd>S</kbd> Skip</button>
      <button type="button" id="undo" disabled><kbd>U</kbd> Undo</button>
    </div>
  </div>
  <p id="review-empty" class="muted" hidden>Nothing left to review. Upload photos on the Predict page.</p>
  <p id="review-status" class="muted" aria-live="polite"></p>
</section>`,
  });
}
