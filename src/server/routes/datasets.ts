import { createRoute, z } from '@hono/zod-openapi';
import { changedLabelCount, datasetHealth } from '../../datasets/health.js';
import { buildDatasetVersion } from '../../datasets/versions.js';
import { CatdogError, NotFoundError } from '../../errors.js';
import { NEAR_DUPLICATE_DISTANCE } from '../../images/index.js';
import { suspiciousLabels } from '../../training/suspicious.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { augmentedSamples, datasetParamsFrom, trainingImageSettingsFrom } from '../dataset-tools.js';
import { presentDataset, presentImage, presentSuspiciousImage } from '../present.js';
import { BuildDatasetSchema, DatasetHealthSchema, DatasetSchema, errorResponse, jsonContent, pagingQuery, SuspiciousImageSchema } from '../schemas.js';

const IdParam = z.object({ id: z.coerce.number().int().positive().openapi({ param: { name: 'id', in: 'path' }, example: 1 }) });

const listDatasets = createRoute({
  method: 'get',
  path: '/datasets',
  'x-catdog-role': 'viewer',
  tags: ['datasets'],
  summary: 'Dataset versions, newest first',
  responses: { 200: jsonContent(z.object({ items: z.array(DatasetSchema) }), 'Every version') },
});

const buildDataset = createRoute({
  method: 'post',
  path: '/datasets',
  'x-catdog-role': 'curator',
  tags: ['datasets'],
  summary: 'Snapshot the labelled photos into a new version (or return the identical latest one)',
  request: { body: { required: false, content: { 'application/json': { schema: BuildDatasetSchema } } } },
  responses: {
    200: jsonContent(DatasetSchema.extend({ created: z.literal(false) }), 'The latest version already holds exactly this'),
    201: jsonContent(DatasetSchema.extend({ created: z.literal(true) }), 'A new version'),
    400: errorResponse('Invalid settings'),
    409: errorResponse('Too few labelled photos (dataset_too_small)'),
    422: errorResponse('imageSize or augmentation sent: they are settings of the training run now (setting_moved)'),
  },
});

/**
 * A version is data only. A client still sending image size or augmentation is refused rather than ignored: ignored,
 * it would go on believing its version (and the runs on it) had that size, and find out from a model card.
 */
const MOVED_TO_TRAINING = {
  imageSize: 'imageSize is a setting of the training run: send it as `imageSize` to POST /api/v1/training-runs',
  augmentation: 'augmentation is a setting of training: set dataset.augmentation in the config',
} as const;

function refuseTrainingSettings(request: z.infer<typeof BuildDatasetSchema>): void {
  const fields = (Object.keys(MOVED_TO_TRAINING) as (keyof typeof MOVED_TO_TRAINING)[]).filter((field) => request[field] !== undefined);
  if (fields.length > 0) {
    const where = fields.map((field) => MOVED_TO_TRAINING[field]).join('; ');
    throw new CatdogError('setting_moved', `a dataset version is data only (photos, labels, splits): ${where}.`, 422, { fields });
  }
}

const versionQuery = (description: string) =>
  z.coerce.number().int().positive().optional().openapi({ description, example: 1 });

const datasetHealthRoute = createRoute({
  method: 'get',
  path: '/datasets/health',
  'x-catdog-role': 'viewer',
  tags: ['datasets'],
  summary: 'Dataset health: class balance, near-duplicate groups (conflicting labels flagged), what changed since the latest version, and the difference between two versions',
  description:
    'Every list (the near-duplicate groups and each list of changes) holds the same page of itself, `limit` items from `offset`, beside its full count (`nearDuplicates.total`, `counts`): the next page is at `offset + limit` while any count is larger.',
  request: {
    query: z.object({
      from: versionQuery('The older version of the difference (default: the second newest)'),
      to: versionQuery('The newer version of the difference (default: the newest)'),
      ...pagingQuery,
    }),
  },
  responses: {
    200: jsonContent(DatasetHealthSchema, 'The health of the labelled photos, a page of each list'),
    400: errorResponse('from or to is not a version number, or limit or offset is out of range (invalid_request)'),
    404: errorResponse('No such version (from or to)'),
  },
});

const getDataset = createRoute({
  method: 'get',
  path: '/datasets/{id}',
  'x-catdog-role': 'viewer',
  tags: ['datasets'],
  summary: 'One version with its counts per split and label',
  request: { params: IdParam },
  responses: { 200: jsonContent(DatasetSchema, 'The version'), 404: errorResponse('No such version') },
});

const previewDataset = createRoute({
  method: 'get',
  path: '/datasets/{id}/preview',
  'x-catdog-role': 'viewer',
  tags: ['datasets'],
  summary: "Training images of a version as a run with the configured image size and augmentation sees them",
  request: { params: IdParam, query: z.object({ n: z.coerce.number().int().min(1).max(24).default(6) }) },
  responses: {
    200: jsonContent(
      z.object({ samples: z.array(z.object({ hash: z.string(), label: z.string(), dataUrl: z.string() })) }),
      'JPEG samples as data URLs',
    ),
    404: errorResponse('No such version'),
  },
});

const suspiciousImages = createRoute({
  method: 'get',
  path: '/datasets/{id}/suspicious',
  'x-catdog-role': 'viewer',
  tags: ['datasets'],
  summary: 'Training images of a version whose label the promoted model disagrees with most (highest loss first)',
  request: {
    params: IdParam,
    query: z.object({ limit: z.coerce.number().int().min(1).max(200).default(20).openapi({ description: 'How many images (1..200).' }) }),
  },
  responses: {
    200: jsonContent(z.object({ items: z.array(SuspiciousImageSchema) }), 'The images, most suspicious first'),
    400: errorResponse('Invalid limit'),
    404: errorResponse('No such version'),
    409: errorResponse("No model is promoted yet (no_promoted_model), or the version's manifest is missing from the blob store (dataset_manifest_missing)"),
  },
});

export function datasetRoutes({ app }: ServerDeps) {
  const routes = routeGroup();

  const findVersion = async (id: number) => {
    const version = await app.db.datasets.get(id);
    if (!version) throw new NotFoundError('dataset version', id);
    return version;
  };

  routes.openapi(listDatasets, async (c) => c.json({ items: (await app.db.datasets.list()).map(presentDataset) }, 200));

  routes.openapi(buildDataset, async (c) => {
    const request = c.req.valid('json') ?? {};
    refuseTrainingSettings(request);
    const { version, created } = await buildDatasetVersion(app, datasetParamsFrom(app.config, request));
    return created ? c.json({ ...presentDataset(version), created }, 201) : c.json({ ...presentDataset(version), created }, 200);
  });

  // Before /datasets/{id}, which would take "health" for an id.
  routes.openapi(datasetHealthRoute, async (c) => {
    const { from, to, limit, offset } = c.req.valid('query');
    for (const id of [from, to]) if (id !== undefined) await findVersion(id);
    const health = await datasetHealth(app, { from, to }, { limit, offset });
    const since = health.sinceLatest;
    const { total, conflicting, groups } = health.nearDuplicates;
    return c.json(
      {
        balance: health.balance,
        nearDuplicates: {
          maxDistance: NEAR_DUPLICATE_DISTANCE,
          notHashed: health.notHashed,
          total,
          conflicting,
          groups: groups.map((group) => ({ distance: group.distance, conflicting: group.conflicting, members: group.members.map(presentImage) })),
        },
        sinceLatestVersion: since
          ? { versionId: since.versionId, newLabels: changedLabelCount(since.counts), summary: `${changedLabelCount(since.counts)} new labels since v${since.versionId}`, counts: since.counts, changes: since.changes }
          : null,
        versionDifference: health.comparison ?? null,
      },
      200,
    );
  });

  routes.openapi(getDataset, async (c) => c.json(presentDataset(await findVersion(c.req.valid('param').id)), 200));

  routes.openapi(previewDataset, async (c) => {
    const version = await findVersion(c.req.valid('param').id);
    const { items } = await app.db.datasets.items(version.id, { split: 'train' });
    const samples = await augmentedSamples(app, items, trainingImageSettingsFrom(app.config), c.req.valid('query').n);
    return c.json({ samples }, 200);
  });

  routes.openapi(suspiciousImages, async (c) => {
    const version = await findVersion(c.req.valid('param').id);
    const items = await suspiciousLabels(app, version.id, c.req.valid('query').limit);
    return c.json({ items: items.map(presentSuspiciousImage) }, 200);
  });

  return routes;
}
