import { createRoute, z } from '@hono/zod-openapi';
import { deleteImages, MAX_BULK, relabelImages } from '../../datasets/curation.js';
import { storeInspectedImage } from '../../datasets/ingest.js';
import { storedThumbnail } from '../../datasets/thumbnails.js';
import { scoreLabelledPhotos, SCORE_BATCH } from '../../serving/scores.js';
import { imageBlobKey } from '../../storage/index.js';
import { NotFoundError } from '../../errors.js';
import { ImageError, inspectImage, withoutMetadata } from '../../images/index.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { presentImage } from '../present.js';
import { clientKey, countRefusedImages } from '../security.js';
import { errorResponse, ImageHashSchema, ImageSchema, jsonContent, LabelSchema, pagingQuery, UploadedFiles } from '../schemas.js';
import { namingFile, readUploads } from '../uploads.js';

/** Content-addressed: the bytes behind a hash never change. */
const IMMUTABLE = 'public, max-age=31536000, immutable';

const getImage = createRoute({
  method: 'get',
  path: '/images/{hash}',
  'x-catdog-role': 'viewer',
  tags: ['images'],
  summary: 'The photo (or a JPEG thumbnail with ?size=thumb)',
  request: {
    params: z.object({ hash: ImageHashSchema.openapi({ param: { name: 'hash', in: 'path' } }) }),
    query: z.object({ size: z.enum(['full', 'thumb']).default('full') }),
  },
  responses: {
    200: { description: 'The image bytes', content: { 'image/*': { schema: z.string().openapi({ format: 'binary' }) } } },
    404: errorResponse('No such image'),
  },
});

const listImages = createRoute({
  method: 'get',
  path: '/images',
  'x-catdog-role': 'viewer',
  tags: ['images'],
  summary: 'Stored photos, newest first, with the count per label',
  request: { query: z.object({ label: z.enum(['cat', 'dog', 'unlabelled']).optional(), ...pagingQuery }) },
  responses: {
    200: jsonContent(
      z.object({
        items: z.array(ImageSchema),
        total: z.number().int(),
        counts: z.object({ cat: z.number().int(), dog: z.number().int(), unlabelled: z.number().int() }),
      }),
      'A page of images',
    ),
    400: errorResponse('Invalid query'),
  },
});

const uploadLabelled = createRoute({
  method: 'post',
  path: '/images',
  'x-catdog-role': 'curator',
  tags: ['images'],
  summary: 'Add labelled photos to the data set (stored once by content)',
  request: {
    body: { required: true, content: { 'multipart/form-data': { schema: z.object({ file: UploadedFiles, label: LabelSchema }) } } },
  },
  responses: {
    200: jsonContent(z.object({ items: z.array(ImageSchema.extend({ inserted: z.boolean() })) }), 'Every photo was already stored'),
    201: jsonContent(z.object({ items: z.array(ImageSchema.extend({ inserted: z.boolean() })) }), 'At least one photo is new'),
    400: errorResponse('Missing file or label'),
    413: errorResponse('Too large (payload_too_large, too_many_files, image_too_large, image_too_many_pixels)'),
    415: errorResponse('Not a supported photo format (image_unsupported_format)'),
    422: errorResponse('A photo that cannot be decoded (image_corrupt); nothing of the request is stored'),
  },
});

const HashParam = z.object({ hash: ImageHashSchema.openapi({ param: { name: 'hash', in: 'path' } }) });
const curationErrors = {
  400: errorResponse('Invalid label, no photo or too many (too_many_photos)'),
  404: errorResponse('A photo that is unknown or already deleted (image_not_found): nothing was changed'),
};

const relabelImage = createRoute({
  method: 'put',
  path: '/images/{hash}/label',
  'x-catdog-role': 'curator',
  tags: ['images'],
  summary: "Give a photo of the data set a curator's label (the next version trains on it)",
  request: { params: HashParam, body: { required: true, content: { 'application/json': { schema: z.object({ label: LabelSchema }) } } } },
  responses: { 200: jsonContent(z.object({ changed: z.number().int() }), '1 when the label changed, 0 when it already was'), ...curationErrors },
});

const deleteImage = createRoute({
  method: 'delete',
  path: '/images/{hash}',
  'x-catdog-role': 'curator',
  tags: ['images'],
  summary: 'Take a photo out of the data set: the next version leaves it out; built versions and the stored bytes stay',
  request: { params: HashParam },
  responses: { 200: jsonContent(z.object({ deleted: z.number().int() }), 'The photo is out of the data set'), ...curationErrors },
});

const BulkCurationSchema = z
  .discriminatedUnion('action', [
    z.object({ action: z.literal('relabel'), label: LabelSchema, hashes: z.array(ImageHashSchema).min(1).max(MAX_BULK) }),
    z.object({ action: z.literal('delete'), hashes: z.array(ImageHashSchema).min(1).max(MAX_BULK) }),
  ])
  .openapi('BulkCuration');

const bulkCuration = createRoute({
  method: 'post',
  path: '/images/bulk',
  'x-catdog-role': 'curator',
  tags: ['images'],
  summary: `Relabel or delete many photos at once (at most ${MAX_BULK}); all or nothing`,
  request: { body: { required: true, content: { 'application/json': { schema: BulkCurationSchema } } } },
  responses: {
    200: jsonContent(z.object({ changed: z.number().int().optional(), deleted: z.number().int().optional() }), 'How many photos changed'),
    ...curationErrors,
  },
});

const scoreImages = createRoute({
  method: 'post',
  path: '/images/scores',
  'x-catdog-role': 'curator',
  tags: ['images'],
  summary: `Store the serving model's P(dog) of up to ${SCORE_BATCH} labelled photos it has not scored yet (for the gallery's model filters)`,
  responses: {
    200: jsonContent(z.object({ modelId: z.string(), scored: z.number().int(), remaining: z.number().int() }), 'How many were scored and how many remain'),
  },
});

/** Who changed a label, as the image's source records it. */
const curatorOf = (c: { get(key: 'principal'): { name: string } | undefined }): string => c.get('principal')?.name ?? 'api';

export function imageRoutes({ app, models, decodeSlots }: ServerDeps) {
  const routes = routeGroup();

  routes.openapi(getImage, async (c) => {
    const { hash } = c.req.valid('param');
    const image = await app.db.images.get(hash);
    if (!image) throw new NotFoundError('image', hash);
    const thumbnail = c.req.valid('query').size === 'thumb';
    const turn = { slots: decodeSlots, client: clientKey(c) };
    const body = thumbnail
      ? await storedThumbnail({ blobs: app.blobs, limits: app.config.images, turn }, hash)
      : await withoutMetadata(await app.blobs.get(imageBlobKey(hash)));
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      'Content-Type': thumbnail ? 'image/jpeg' : `image/${image.format}`,
      'Cache-Control': IMMUTABLE,
    });
  });

  routes.openapi(listImages, async (c) => {
    const [page, counts] = await Promise.all([app.db.images.list(c.req.valid('query')), app.db.images.countByLabel()]);
    return c.json({ items: page.items.map(presentImage), total: page.total, counts }, 200);
  });

  routes.openapi(relabelImage, async (c) =>
    c.json(await relabelImages(app, [c.req.valid('param').hash], c.req.valid('json').label, curatorOf(c)), 200),
  );

  routes.openapi(deleteImage, async (c) => c.json(await deleteImages(app, [c.req.valid('param').hash]), 200));

  routes.openapi(bulkCuration, async (c) => {
    const request = c.req.valid('json');
    return c.json(request.action === 'relabel' ? await relabelImages(app, request.hashes, request.label, curatorOf(c)) : await deleteImages(app, request.hashes), 200);
  });

  routes.openapi(scoreImages, async (c) => c.json(await scoreLabelledPhotos({ db: app.db, blobs: app.blobs, models }), 200));

  routes.openapi(uploadLabelled, async (c) => {
    const { file, label } = c.req.valid('form');
    const uploads = await readUploads(file, app.config.server.maxFilesPerRequest);
    // All or nothing: every file is validated (a full decode) before the first is stored or relabelled.
    const inspected = [];
    for (const upload of uploads) {
      // Labelled photos teach the model: strict, a photo that decodes only with warnings is refused.
      const info = await inspectImage(upload.bytes, app.config.images, { strict: true, turn: { slots: decodeSlots, client: clientKey(c) } }).catch((error: unknown) => {
        if (!(error instanceof ImageError)) throw error;
        countRefusedImages(c, 1);
        throw namingFile(error, upload.fileName);
      });
      inspected.push({ upload, info });
    }
    const items = [];
    for (const { upload, info } of inspected) {
      const { image, inserted } = await storeInspectedImage(
        { db: app.db, blobs: app.blobs },
        { bytes: upload.bytes, label, source: 'upload', originalName: upload.fileName },
        info,
      );
      // A labelled upload is a person's explicit verdict, like a validation: it wins over an earlier label.
      const labelled = image.label === label ? image : await app.db.images.setLabel(image.hash, label, 'upload');
      items.push({ ...presentImage(labelled), inserted });
    }
    return c.json({ items }, items.some((item) => item.inserted) ? 201 : 200);
  });

  return routes;
}
