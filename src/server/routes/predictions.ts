import { createRoute, z } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { undoValidation, validatePrediction } from '../../serving/feedback.js';
import { nextForReview, restoreSkipped, reviewProgress, skipForReview } from '../../serving/review.js';
import { predictEachUpload } from '../../serving/predict.js';
import { NotFoundError } from '../../errors.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { modelVersions, presentPrediction, presentPredictionResult } from '../present.js';
import { clientKey, countRefusedImages } from '../security.js';
import { errorResponse, FeedbackLabelSchema, jsonContent, pagingQuery, PredictionSchema, RefusedFileSchema, ReviewItemSchema, UploadedFiles } from '../schemas.js';
import { namingFile, readUploads } from '../uploads.js';

const IdParam = z.object({ id: z.string().min(1).openapi({ param: { name: 'id', in: 'path' }, example: 'prd_0123456789abcdef' }) });

const imageErrors = {
  400: errorResponse('No file, or an empty one (every file refused: the first one\'s error)'),
  413: errorResponse('Too large (payload_too_large, too_many_files, image_too_large, image_too_many_pixels)'),
  415: errorResponse('Not a JPEG, PNG, WebP, GIF or AVIF photo (image_unsupported_format)'),
  422: errorResponse('A photo that cannot be decoded (image_corrupt)'),
};

const predict = createRoute({
  method: 'post',
  path: '/predictions',
  'x-catdog-role': 'viewer',
  tags: ['predictions'],
  summary: 'Classify one or many photos with the serving model',
  request: {
    body: { required: true, content: { 'multipart/form-data': { schema: z.object({ file: UploadedFiles }) } } },
  },
  responses: {
    200: jsonContent(
      z.object({
        predictions: z.array(PredictionSchema).openapi({ description: 'One per photo that could be used, in upload order.' }),
        errors: z.array(RefusedFileSchema).openapi({ description: 'The files that were refused, each with its code; nothing of them is stored.' }),
      }),
      'At least one photo was classified; files that are not usable photos are listed in errors. When every file is refused, the answer is the first one\'s error (4xx).',
    ),
    ...imageErrors,
  },
});

const listPredictions = createRoute({
  method: 'get',
  path: '/predictions',
  'x-catdog-role': 'viewer',
  tags: ['predictions'],
  summary: 'Predictions, newest first',
  request: {
    query: z.object({
      validated: z.enum(['true', 'false']).optional().openapi({ description: 'Only those a user validated (true) or not (false).' }),
      label: FeedbackLabelSchema.optional().openapi({ description: 'The predicted label.' }),
      modelId: z.string().optional(),
      since: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Inclusive lower bound on creation time (ISO 8601).' }),
      until: z.iso.datetime({ offset: true }).optional().openapi({ description: 'Exclusive upper bound on creation time (ISO 8601).' }),
      ...pagingQuery,
    }),
  },
  responses: {
    200: jsonContent(z.object({ items: z.array(PredictionSchema), total: z.number().int() }), 'A page of predictions'),
    400: errorResponse('Invalid query'),
  },
});

const getPrediction = createRoute({
  method: 'get',
  path: '/predictions/{id}',
  'x-catdog-role': 'viewer',
  tags: ['predictions'],
  summary: 'One prediction with its validation',
  request: { params: IdParam },
  responses: { 200: jsonContent(PredictionSchema, 'The prediction'), 404: errorResponse('No such prediction') },
});

const validate = createRoute({
  method: 'post',
  path: '/predictions/{id}/validation',
  'x-catdog-role': 'curator',
  tags: ['predictions'],
  summary: "Confirm or correct a prediction: the photo takes the user's label (neither = out of the data set)",
  request: {
    params: IdParam,
    body: { required: true, content: { 'application/json': { schema: z.object({ label: FeedbackLabelSchema }) } } },
  },
  responses: {
    200: jsonContent(PredictionSchema, 'The prediction with its validation'),
    400: errorResponse('Invalid label'),
    404: errorResponse('No such prediction'),
  },
});

const undo = createRoute({
  method: 'delete',
  path: '/predictions/{id}/validation',
  'x-catdog-role': 'curator',
  tags: ['predictions'],
  summary: 'Undo the latest validation (the label before it comes back)',
  request: { params: IdParam },
  responses: {
    200: jsonContent(PredictionSchema, 'The prediction as it was before'),
    404: errorResponse('No such prediction'),
    409: errorResponse('Nothing to undo (nothing_to_undo)'),
  },
});

const reviewNext = createRoute({
  method: 'get',
  path: '/review/next',
  'x-catdog-role': 'viewer',
  tags: ['review'],
  summary: 'The next photo waiting for a label: one per photo, ranked by the serving model, without the ones the caller skipped',
  request: {
    query: z.object({
      strategy: z
        .enum(['uncertain', 'oldest', 'random'])
        .default('uncertain')
        .openapi({ description: "uncertain: what the serving model finds closest to a coin flip first (photos it has not scored yet follow)." }),
      exclude: z
        .string()
        .optional()
        .transform((ids) => (ids ? ids.split(',').filter(Boolean) : []))
        .pipe(z.array(z.string()).max(100))
        .openapi({ description: 'Comma-separated prediction ids to leave out besides the stored skips (at most 100).' }),
    }),
  },
  responses: {
    200: jsonContent(ReviewItemSchema, 'The latest prediction of the next photo, with what the serving model says of it now'),
    204: { description: 'Nothing left to review' },
    400: errorResponse('Invalid query'),
  },
});

const ReviewProgressSchema = z.object({
  validated: z.number().int(),
  pending: z.number().int().openapi({ description: 'Photos waiting in the caller’s queue (skipped ones not counted)' }),
  skipped: z.number().int().openapi({ description: 'Photos the caller skipped that still need a label' }),
});

const reviewProgressRoute = createRoute({
  method: 'get',
  path: '/review/progress',
  'x-catdog-role': 'viewer',
  tags: ['review'],
  summary: 'How many predictions are validated, and how many photos wait in (or were skipped from) the caller’s queue',
  responses: { 200: jsonContent(ReviewProgressSchema, 'Counts') },
});

const skipReview = createRoute({
  method: 'post',
  path: '/review/skips',
  'x-catdog-role': 'curator',
  tags: ['review'],
  summary: "Skip a prediction's photo: it leaves the caller's queue (not other reviewers') until skips are restored",
  request: { body: { required: true, content: { 'application/json': { schema: z.object({ predictionId: z.string().min(1) }) } } } },
  responses: {
    200: jsonContent(ReviewProgressSchema, 'The caller’s counts after the skip'),
    404: errorResponse('No such prediction'),
  },
});

const restoreSkips = createRoute({
  method: 'delete',
  path: '/review/skips',
  'x-catdog-role': 'curator',
  tags: ['review'],
  summary: "Bring every photo the caller skipped back into their queue",
  responses: { 200: jsonContent(ReviewProgressSchema.extend({ restored: z.number().int() }), 'How many came back, and the counts') },
});

/** Whose skips: the token (a session is its token's), else the principal's name. */
export const reviewerOf = (c: Context): string => {
  const principal = c.get('principal');
  return principal?.tokenId ?? principal?.name ?? 'anonymous';
};

export function predictionRoutes({ app, models, metrics, retraining, decodeSlots }: ServerDeps) {
  const routes = routeGroup();
  const { db } = app;
  const findPrediction = async (id: string) => {
    const row = await db.predictions.get(id);
    if (!row) throw new NotFoundError('prediction', id);
    return row;
  };

  routes.openapi(predict, async (c) => {
    const uploads = await readUploads(c.req.valid('form').file, app.config.server.maxFilesPerRequest);
    const { predictions, refused } = await predictEachUpload(
      { db, blobs: app.blobs, limits: app.config.images, turn: { slots: decodeSlots, client: clientKey(c) }, models, neither: app.config.serving.neither },
      uploads,
      'api',
    );
    countRefusedImages(c, refused.length);
    // A single file (the usual call) keeps its own status; many answer for the good ones and list the others.
    const firstRefused = refused[0];
    if (predictions.length === 0 && firstRefused) throw namingFile(firstRefused.error, uploads[firstRefused.index]!.fileName);
    for (const result of predictions) metrics.predictions.inc({ label: result.label });
    const errors = refused.map(({ index, error }) => ({ index, file: uploads[index]!.fileName, code: error.code, message: error.message }));
    return c.json({ predictions: predictions.map(presentPredictionResult), errors }, 200);
  });

  routes.openapi(listPredictions, async (c) => {
    const { validated, ...filter } = c.req.valid('query');
    const [page, versionOf] = await Promise.all([
      db.predictions.list({ ...filter, validated: validated === undefined ? undefined : validated === 'true' }),
      modelVersions(db),
    ]);
    return c.json({ items: page.items.map((row) => presentPrediction(row, versionOf(row.modelId))), total: page.total }, 200);
  });

  routes.openapi(getPrediction, async (c) => {
    const row = await findPrediction(c.req.valid('param').id);
    return c.json(presentPrediction(row, (await modelVersions(db))(row.modelId)), 200);
  });

  routes.openapi(validate, async (c) => {
    const row = await validatePrediction(app, c.req.valid('param').id, c.req.valid('json').label, 'api');
    retraining?.afterValidation();
    return c.json(presentPrediction(row, (await modelVersions(db))(row.modelId)), 200);
  });

  routes.openapi(undo, async (c) => {
    const row = await undoValidation(app, c.req.valid('param').id);
    return c.json(presentPrediction(row, (await modelVersions(db))(row.modelId)), 200);
  });

  routes.openapi(reviewNext, async (c) => {
    const { strategy, exclude } = c.req.valid('query');
    const item = await nextForReview({ db, blobs: app.blobs, models }, { actor: reviewerOf(c), strategy, exclude });
    if (!item) return c.body(null, 204);
    const { prediction, image, serving } = item;
    return c.json(
      {
        ...presentPrediction(prediction, (await modelVersions(db))(prediction.modelId)),
        fileName: image.originalName ?? undefined,
        image: { width: image.width, height: image.height, source: image.source },
        serving,
      },
      200,
    );
  });

  routes.openapi(reviewProgressRoute, async (c) => c.json(await reviewProgress(app, reviewerOf(c)), 200));

  routes.openapi(skipReview, async (c) => {
    await skipForReview(app, reviewerOf(c), await findPrediction(c.req.valid('json').predictionId));
    return c.json(await reviewProgress(app, reviewerOf(c)), 200);
  });

  routes.openapi(restoreSkips, async (c) => {
    const restored = await restoreSkipped(app, reviewerOf(c));
    return c.json({ restored, ...(await reviewProgress(app, reviewerOf(c))) }, 200);
  });

  return routes;
}
