import { createRoute, z } from '@hono/zod-openapi';
import { zipSync } from 'fflate';
import type { ModelRow } from '../../db/index.js';
import { loadManifest } from '../../datasets/versions.js';
import { CatdogError } from '../../errors.js';
import { rocAuc, rocCurve } from '../../ml/index.js';
import { readModelCard, readModelFiles } from '../../registry/artifacts.js';
import { predictStoredWith } from '../../registry/evaluate.js';
import { EXPORT_FORMATS, exportModel } from '../../registry/export.js';
import { importModel } from '../../registry/import.js';
import { compareModels, evaluateModelOn, MAX_COMPARED_MODELS } from '../../registry/comparison.js';
import { findModel } from '../../registry/resolve.js';
import { promoteAndServe } from '../../serving/promote.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { presentModel, thumbnailUrl } from '../present.js';
import { errorResponse, jsonContent, MetricsSchema, ModelSchema, PromotionSchema, RocCurveSchema } from '../schemas.js';

const IdParam = z.object({
  id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, description: 'Model id, version number, or "current"', example: 'current' }),
});

const listModels = createRoute({
  method: 'get',
  path: '/models',
  'x-catdog-role': 'viewer',
  tags: ['models'],
  summary: 'The registry, newest version first, with the promotion history',
  responses: {
    200: jsonContent(
      z.object({
        items: z.array(ModelSchema),
        servingModelId: z.string().openapi({ description: '"zero-shot" until a model is promoted' }),
        promotions: z.array(PromotionSchema),
      }),
      'Every model',
    ),
  },
});

const getModel = createRoute({
  method: 'get',
  path: '/models/{id}',
  'x-catdog-role': 'viewer',
  tags: ['models'],
  summary: 'One model with its test metrics',
  request: { params: IdParam },
  responses: { 200: jsonContent(ModelSchema, 'The model'), 404: errorResponse('No such model') },
});

const modelRoc = createRoute({
  method: 'get',
  path: '/models/{id}/roc',
  'x-catdog-role': 'viewer',
  tags: ['models'],
  summary: "ROC curve on the test split of the model's dataset version (computed on first request, then cached)",
  request: { params: IdParam },
  responses: {
    200: jsonContent(RocCurveSchema, 'The curve'),
    404: errorResponse('No such model'),
    409: errorResponse("The manifest of the model's dataset version is missing from the blob store (dataset_manifest_missing)"),
  },
});

const ReliabilitySchema = z
  .object({
    modelId: z.string(),
    temperature: z.number().openapi({ description: 'Logits are divided by it before every answer (fitted on the validation split)' }),
    eceValidation: z.number(),
    eceTest: z.number().nullable().openapi({ description: 'Expected calibration error on the test split, 15 equal-width confidence bins' }),
    bins: z.array(z.object({ lower: z.number(), upper: z.number(), confidence: z.number(), accuracy: z.number(), count: z.number().int() })),
  })
  .openapi('Reliability');

const modelReliability = createRoute({
  method: 'get',
  path: '/models/{id}/reliability',
  'x-catdog-role': 'viewer',
  tags: ['models'],
  summary: 'Reliability diagram of the test split (confidence against accuracy per bin) and the temperature in use',
  request: { params: IdParam },
  responses: { 200: jsonContent(ReliabilitySchema, 'The diagram'), 404: errorResponse('No such model, or one trained before calibration') },
});

const promote = createRoute({
  method: 'post',
  path: '/models/{id}/promote',
  'x-catdog-role': 'admin',
  tags: ['models'],
  summary: 'Serve this model from now on (rollback = promote an older one); no restart needed',
  request: {
    params: IdParam,
    body: { required: false, content: { 'application/json': { schema: z.object({ reason: z.string().max(500).optional() }) } } },
  },
  responses: { 200: jsonContent(ModelSchema, 'The model, now serving'), 404: errorResponse('No such model') },
});

const exportDownload = createRoute({
  method: 'get',
  path: '/models/{id}/export',
  'x-catdog-role': 'viewer',
  tags: ['models'],
  summary: 'Download the model to run without catdog: raw RGB 0–255 pixels in (photo squashed to S×S), P(dog) out',
  description:
    '`keras`: a Keras 3 `.keras` file (`keras.saving.load_model`). `tfjs`: a zip of a TensorFlow.js layers model ' +
    '(`model.json`, `weights.bin`) with `catdog.json` saying how to feed it. The zero-shot model cannot be exported.',
  request: {
    params: IdParam,
    query: z.object({ format: z.enum(EXPORT_FORMATS).default('keras').openapi({ description: 'keras or tfjs' }) }),
  },
  responses: {
    200: {
      content: {
        'application/octet-stream': { schema: z.string().openapi({ format: 'binary' }) },
        'application/zip': { schema: z.string().openapi({ format: 'binary' }) },
      },
      description: 'The file, as an attachment',
    },
    404: errorResponse('No such model'),
    409: errorResponse('The zero-shot model is serving and cannot be exported'),
  },
});

const ModelFileUpload = z
  .union([z.instanceof(File), z.array(z.instanceof(File)).min(1)], { error: 'attach the model as a multipart field named "file"' })
  .transform((files) => (Array.isArray(files) ? files : [files]))
  .openapi({ type: 'array', items: { type: 'string', format: 'binary' } });

const importUpload = createRoute({
  method: 'post',
  path: '/models/import',
  'x-catdog-role': 'admin',
  tags: ['models'],
  summary: 'Register a model trained elsewhere; it is evaluated on the latest dataset version and promoted only if better',
  description:
    'One `file`: a Keras `.keras`, a legacy `.h5`, or a zip of a TF.js model folder; or several `file`s: `model.json` ' +
    'and its weight shards. The model must take raw RGB 0–255 pixels [null, S, S, 3] (its own scaling inside, as ' +
    "catdog's exports have) and output one sigmoid unit, P(dog).",
  request: {
    body: {
      required: true,
      content: { 'multipart/form-data': { schema: z.object({ file: ModelFileUpload, name: z.string().min(1).max(200).optional() }) } },
    },
  },
  responses: {
    201: jsonContent(z.object({ model: ModelSchema, promotion: z.object({ promoted: z.boolean(), reason: z.string() }) }), 'The registered model'),
    400: errorResponse('No file'),
    409: errorResponse('No dataset version to evaluate it on'),
    413: errorResponse('Too large'),
    422: errorResponse('Not a model catdog can run, or not one image in and P(dog) out'),
  },
});

const EvaluationSchema = z
  .object({
    modelId: z.string(),
    datasetId: z.number().int(),
    metrics: MetricsSchema,
    degenerate: z.string().nullable().openapi({ description: 'Why the model is degenerate (it answers one class for every test photo), else null' }),
    evaluatedAt: z.string(),
  })
  .openapi('ModelEvaluation');

const evaluateModel = createRoute({
  method: 'post',
  path: '/models/{id}/evaluations',
  'x-catdog-role': 'curator',
  tags: ['models'],
  summary: "Score a model on any dataset version's test split (kept: later comparisons on that split read it)",
  description: 'Models and dataset versions never change, so a model already scored on that version answers at once with the stored result.',
  request: { params: IdParam, body: { required: true, content: { 'application/json': { schema: z.object({ datasetId: z.number().int().positive() }) } } } },
  responses: {
    200: jsonContent(EvaluationSchema, 'The test metrics of the model on that version'),
    404: errorResponse('No such model or dataset version'),
    409: errorResponse('The version has no test photos (empty_test_split) or its manifest is missing'),
  },
});

const compare = createRoute({
  method: 'get',
  path: '/model-comparisons',
  'x-catdog-role': 'viewer',
  tags: ['models'],
  summary: "Two or more models on one dataset version's test split: metrics, confusion matrices and the photos they disagree on",
  description:
    'Reads stored evaluations only: a model not yet scored on that version has `evaluation: null` until a curator scores it ' +
    '(POST /models/{id}/evaluations).',
  request: {
    query: z.object({
      models: z
        .string()
        .transform((list) => list.split(',').map((item) => item.trim()).filter((item) => item !== ''))
        .openapi({ description: `2 to ${MAX_COMPARED_MODELS} model ids or versions, comma-separated`, example: '3,4' }),
      datasetId: z.coerce.number().int().positive().openapi({ description: 'The dataset version whose test split every model is scored on' }),
    }),
  },
  responses: {
    200: jsonContent(
      z
        .object({
          datasetId: z.number().int(),
          testCount: z.number().int(),
          models: z.array(z.object({ model: ModelSchema, evaluation: EvaluationSchema.nullable() })),
          disagreements: z.array(
            z.object({ hash: z.string(), label: z.enum(['cat', 'dog']), pDog: z.array(z.number()).openapi({ description: 'Per model, in the order of `models`' }), thumbnailUrl: z.string() }),
          ),
        })
        .openapi('ModelComparison'),
      'The comparison',
    ),
    400: errorResponse('Fewer than 2 or too many models'),
    404: errorResponse('No such model or dataset version'),
  },
});

export function modelRoutes({ app, models }: ServerDeps) {
  const routes = routeGroup();
  // Models are immutable, so is their curve on their own test split.
  const rocCache = new Map<string, Promise<z.infer<typeof RocCurveSchema>>>();

  const requireModel = async (reference: string): Promise<ModelRow> => {
    const model = await findModel(app, reference);
    if (!model) throw new CatdogError('not_found', 'no model is promoted yet: the zero-shot model is serving', 404);
    return model;
  };
  const servingModelId = async () => (await models.classifier()).modelId;
  const present = async (model: ModelRow, serving: string) => presentModel(model, serving, await readModelCard(app.blobs, model.artifactPrefix));

  const computeRoc = async (model: ModelRow): Promise<z.infer<typeof RocCurveSchema>> => {
    const { manifest } = await loadManifest(app, model.datasetId);
    const test = manifest.items.filter((item) => item.split === 'test');
    const pDog = await predictStoredWith(app, model, test.map((item) => item.hash));
    const labels = test.map((item) => (item.label === 'dog' ? 1 : 0));
    return { modelId: model.id, datasetId: model.datasetId, split: 'test', rocAuc: rocAuc(labels, pDog), points: rocCurve(labels, pDog) };
  };

  routes.openapi(listModels, async (c) => {
    const [all, serving, promotions] = await Promise.all([app.db.models.list(), servingModelId(), app.db.models.promotions()]);
    return c.json({ items: await Promise.all(all.map((model) => present(model, serving))), servingModelId: serving, promotions }, 200);
  });

  routes.openapi(getModel, async (c) => {
    const model = await requireModel(c.req.valid('param').id);
    return c.json(await present(model, await servingModelId()), 200);
  });

  routes.openapi(modelRoc, async (c) => {
    const model = await requireModel(c.req.valid('param').id);
    let curve = rocCache.get(model.id);
    if (!curve) {
      curve = computeRoc(model);
      curve.catch(() => rocCache.delete(model.id));
      rocCache.set(model.id, curve);
    }
    return c.json(await curve, 200);
  });

  routes.openapi(modelReliability, async (c) => {
    const model = await requireModel(c.req.valid('param').id);
    const { calibration } = (await readModelFiles(app.blobs, model.artifactPrefix)).card;
    if (!calibration) throw new CatdogError('not_found', `model ${model.id} was trained before calibration was recorded`, 404);
    const { temperature, eceValidation, eceTest, reliability } = calibration;
    return c.json({ modelId: model.id, temperature, eceValidation, eceTest: eceTest ?? null, bins: reliability ?? [] }, 200);
  });

  routes.openapi(promote, async (c) => {
    const model = await requireModel(c.req.valid('param').id);
    const { reason } = c.req.valid('json');
    const actor = c.get('principal')?.name ?? 'api';
    const serving = await promoteAndServe({ app, models }, model, { reason: reason ?? 'promoted through the API', actor });
    return c.json(await present(model, serving), 200);
  });

  routes.openapi(evaluateModel, async (c) => {
    return c.json(await evaluateModelOn(app, c.req.valid('param').id, c.req.valid('json').datasetId), 200);
  });

  routes.openapi(compare, async (c) => {
    const { models: references, datasetId } = c.req.valid('query');
    const comparison = await compareModels(app, references, datasetId);
    const serving = await servingModelId();
    return c.json(
      {
        ...comparison,
        models: await Promise.all(comparison.models.map(async ({ model, evaluation }) => ({ model: await present(model, serving), evaluation }))),
        disagreements: comparison.disagreements.map((photo) => ({ ...photo, thumbnailUrl: thumbnailUrl(photo.hash) })),
      },
      200,
    );
  });

  routes.openapi(exportDownload, async (c) => {
    const exported = await exportModel(app, c.req.valid('param').id, c.req.valid('query').format);
    const [body, fileName, type] = exported.format === 'keras'
      ? [exported.bytes, exported.fileName, 'application/octet-stream']
      : [zipSync(exported.files), `${exported.fileName}.zip`, 'application/zip'];
    return c.body(body as Uint8Array<ArrayBuffer>, 200, { 'Content-Type': type, 'Content-Disposition': `attachment; filename="${fileName}"` });
  });

  routes.openapi(importUpload, async (c) => {
    const { file, name } = c.req.valid('form');
    const uploads = await Promise.all(file.map(async (part) => ({ fileName: part.name || 'upload', bytes: new Uint8Array(await part.arrayBuffer()) })));
    const [single] = uploads;
    const upload = single && uploads.length === 1 ? single : { files: Object.fromEntries(uploads.map((part) => [part.fileName, part.bytes])) };
    const { model, promotion } = await importModel(app, upload, { name, actor: 'api' });
    const serving = promotion.promoted ? (await models.refresh()).modelId : await servingModelId();
    return c.json({ model: await present(model, serving), promotion: { promoted: promotion.promoted, reason: promotion.reason } }, 201);
  });

  return routes;
}
