import type { ServerDeps } from '../../server/context.js';
import { html, type SafeHtml } from '../html.js';
import { page } from '../layout.js';
import type { WebUser } from '../user.js';

/** "mdl_… (v3)", or what serves before any promotion. */
export async function servingLabel({ models }: Pick<ServerDeps, 'models'>): Promise<string> {
  try {
    const classifier = await models.classifier();
    return classifier.version === null ? `${classifier.modelId} (no trained model promoted yet)` : `${classifier.modelId} (v${classifier.version})`;
  } catch {
    return 'no model can be loaded (see the server log)';
  }
}

/** What a mistyped or stale address under the web UI shows: the navigation and a way back, not a JSON error. */
export function notFoundPage(path: string, user: WebUser): SafeHtml {
  return page({
    title: 'Page not found',
    path,
    user,
    body: html`<section class="card" id="not-found">
<p>There is no page at <code class="long-text">${path}</code>.</p>
<p>Pick a page above, or go to <a href="/">Predict</a>. The JSON API lives under <a href="/api/docs"><code>/api/v1</code></a>.</p>
</section>`,
  });
}
