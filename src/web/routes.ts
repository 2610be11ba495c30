import { Hono, type Context } from 'hono';
import { allows } from '../auth/index.js';
import { CatdogError } from '../errors.js';
import { listVersions } from '../datasets/health.js';
import { buildDatasetVersion } from '../datasets/versions.js';
import { compareModels, evaluateModelOn } from '../registry/comparison.js';
import { findModel } from '../registry/resolve.js';
import type { ServerDeps } from '../server/context.js';
import { datasetParamsFrom } from '../server/dataset-tools.js';
import { CANCEL_JOB_ROLE, cancelQueuedJob } from '../jobs/cancel.js';
import { settleCancelledTrainingJob } from '../training/service.js';
import { promoteAndServe } from '../serving/promote.js';
import { html, type SafeHtml } from './html.js';
import { reviewerOf } from '../server/routes/predictions.js';
import { buildRequestFromForm, datasetPage, previewFragment, suspiciousFragment, thumbnailsFragment, versionsSection } from './pages/dataset.js';
import { galleryGrid, galleryPageView, type CurationView } from './pages/gallery.js';
import { healthPage } from './pages/health.js';
import { jobsPage, jobsSection, stateFilter, type JobsView } from './pages/jobs.js';
import { comparisonFragment, modelsPage, modelsSection, registryView } from './pages/models.js';
import { predictPage } from './pages/predict.js';
import { reviewPage } from './pages/review.js';
import { trainingHistory, trainingPage } from './pages/training.js';
import { loadStaticFiles } from './static-files.js';
import { webUser } from './user.js';

const IMAGE_LABEL_FILTERS = new Set(['cat', 'dog', 'unlabelled']);

const render = (c: Context, markup: SafeHtml) => c.html(markup.text);

/** Single-valued form fields; the build form has no repeated names. */
async function formFields(c: Context): Promise<Record<string, string | undefined>> {
  const body = await c.req.parseBody();
  return Object.fromEntries(Object.entries(body).map(([key, value]) => [key, typeof value === 'string' ? value : undefined]));
}


const jobsView = (c: Context): JobsView => ({ state: stateFilter(c.req.query('state')), canCancel: allows(c.get('principal')?.role, CANCEL_JOB_ROLE) });

/** Pages (full HTML), the fragments htmx swaps into them, and the static files they load. */
export function webRoutes(deps: ServerDeps): Hono {
  const web = new Hono();
  const staticFiles = loadStaticFiles();

  web.get('/static/*', (c) => {
    const file = staticFiles.get(c.req.path.slice('/static/'.length));
    if (!file) throw new CatdogError('not_found', `no static file ${c.req.path}`, 404);
    return c.body(file.body as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': file.contentType, 'Cache-Control': 'public, max-age=300' });
  });
  web.get('/api/docs', (c) => c.redirect('/static/api-docs.html'));

  const user = (c: Context) => webUser(c, deps.access);
  const curationView = (c: Context): CurationView => ({ canCurate: allows(c.get('principal')?.role, 'curator'), user: user(c) });
  web.get('/', async (c) => render(c, await predictPage(deps, user(c))));
  web.get('/review', async (c) => render(c, await reviewPage(deps, { ...curationView(c), actor: reviewerOf(c) })));
  web.get('/dataset', async (c) => render(c, await datasetPage(deps, curationView(c))));
  web.get('/training', async (c) => render(c, await trainingPage(deps, user(c))));
  web.get('/models', async (c) => render(c, await modelsPage(deps, user(c), c.req.query('model'))));
  web.get('/jobs', async (c) => render(c, await jobsPage(deps, jobsView(c), user(c))));

  web.get('/training/history', async (c) => render(c, await trainingHistory(deps)));
  web.get('/dataset/thumbnails', async (c) => {
    const label = c.req.query('label');
    const offset = Math.max(0, Number.parseInt(c.req.query('offset') ?? '0', 10) || 0);
    const filter = label && IMAGE_LABEL_FILTERS.has(label) ? (label as 'cat' | 'dog' | 'unlabelled') : undefined;
    return render(c, await thumbnailsFragment(deps, { label: filter, offset }));
  });
  web.get('/dataset/gallery', async (c) => render(c, await galleryPageView(deps, curationView(c), c.req.query())));
  web.get('/dataset/gallery/grid', async (c) => render(c, await galleryGrid(deps, c.req.query(), curationView(c))));
  web.get('/dataset/health', async (c) => render(c, await healthPage(deps, curationView(c), c.req.query())));
  web.get('/dataset/preview', async (c) => render(c, await previewFragment(deps, c.req.query())));
  web.get('/dataset/suspicious', async (c) => render(c, await suspiciousFragment(deps)));
  web.post('/dataset/versions', async (c) => {
    const { app } = deps;
    let notice: { kind: 'ok' | 'error'; text: string };
    try {
      const { version, created } = await buildDatasetVersion(app, datasetParamsFrom(app.config, buildRequestFromForm(await formFields(c))));
      notice = { kind: 'ok', text: created ? `Built version v${version.id} with ${version.imageCount} photos.` : `Nothing changed since v${version.id}: reusing it.` };
    } catch (error) {
      if (!(error instanceof CatdogError)) throw error;
      // htmx swaps only 2xx answers: the form's problem is shown in the section it targets.
      notice = { kind: 'error', text: error.message };
    }
    return render(c, versionsSection(await listVersions(app), notice));
  });

  web.post('/models/:id/promote', async (c) => {
    const model = await findModel(deps.app, c.req.param('id'));
    if (!model) throw new CatdogError('not_found', `no model ${c.req.param('id')}`, 404);
    await promoteAndServe(deps, model, { reason: 'promoted from the web UI', actor: c.get('principal')?.name ?? 'web' });
    return render(c, modelsSection(await registryView(deps, user(c)), `v${model.version} now serves.`));
  });

  /** The comparison fragment for the compare form's models and dataset; `score` first scores those not yet scored. */
  const comparison = async (c: Context, fields: { models: string[]; dataset: string | undefined }, score: boolean) => {
    try {
      const datasetId = Number(fields.dataset);
      if (!Number.isInteger(datasetId) || datasetId < 1) throw new CatdogError('invalid_request', 'choose a dataset version to compare on', 400);
      if (score) for (const model of fields.models) await evaluateModelOn(deps.app, model, datasetId);
      return render(c, comparisonFragment(await compareModels(deps.app, fields.models, datasetId), user(c)));
    } catch (error) {
      if (!(error instanceof CatdogError)) throw error;
      // htmx swaps only 2xx answers: the form's problem is shown where the comparison would be.
      return render(c, html`<p class="notice error" role="alert">${error.message}</p>`);
    }
  };
  web.get('/models/compare', (c) => comparison(c, { models: c.req.queries('model') ?? [], dataset: c.req.query('dataset') }, false));
  web.post('/models/compare', async (c) => {
    const body = await c.req.parseBody({ all: true });
    const models = [body.model].flat().filter((value): value is string => typeof value === 'string');
    return comparison(c, { models, dataset: typeof body.dataset === 'string' ? body.dataset : undefined }, true);
  });

  web.get('/jobs/table', async (c) => render(c, await jobsSection(deps, jobsView(c))));
  web.post('/jobs/:id/cancel', async (c) => {
    let notice: JobsView['notice'];
    try {
      const job = await cancelQueuedJob(deps.jobs, c.req.param('id'));
      await settleCancelledTrainingJob(deps.app, job);
      notice = { kind: 'ok', text: job.state === 'cancelled' ? `Cancelled ${job.id}.` : `Asked the worker running ${job.id} to stop.` };
    } catch (error) {
      if (!(error instanceof CatdogError)) throw error;
      // htmx swaps only 2xx answers: the refusal (already finished, unknown job) is shown in the table it targets.
      notice = { kind: 'error', text: error.message };
    }
    return render(c, await jobsSection(deps, { ...jobsView(c), notice }));
  });

  return web;
}
