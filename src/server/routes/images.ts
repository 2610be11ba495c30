import { createRoute, z } from '@hono/zod-openapi';
import { ingestImage } from '../../datasets/ingest.js';
import { imageBlobKey } from '../../storage/index.js';
import { NotFoundError } from '../../errors.js';
import { ImageError, thumbnailJpeg, withoutMetadata } from '../../images/index.js';
import { routeGroup, type ServerDeps } from '../context.js';
import { presentImage } from '../present.js';
import { errorResponse, ImageHashSchema, ImageSchema, jsonContent, LabelSchema, pagingQuery, UploadedFiles } from '../schemas.js';
import { namingFile, readUploads } from '../uploads.js';

const THUMBNAIL_SIZE = 256;
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
    413: errorResponse('Too large'),
    415: errorResponse('Not a supported photo format'),
    422: errorResponse('A photo that cannot be decoded'),
  },
});

export function imageRoutes({ app }: ServerDeps) {
  const routes = routeGroup();

  routes.openapi(getImage, async (c) => {
    const { hash } = c.req.valid('param');
    const image = await app.db.images.get(hash);
    if (!image) throw new NotFoundError('image', hash);
    const bytes = await app.blobs.get(imageBlobKey(hash));
    const thumbnail = c.req.valid('query').size === 'thumb';
    const body = thumbnail ? await thumbnailJpeg(bytes, THUMBNAIL_SIZE) : await withoutMetadata(bytes);
    return c.body(body as Uint8Array<ArrayBuffer>, 200, {
      'Content-Type': thumbnail ? 'image/jpeg' : `image/${image.format}`,
      'Cache-Control': IMMUTABLE,
    });
  });

  routes.openapi(listImages, async (c) => {
    const [page, counts] = await Promise.all([app.db.images.list(c.req.valid('query')), app.db.images.countByLabel()]);
    return c.json({ items: page.items.map(presentImage), total: page.total, counts }, 200);
  });

  routes.openapi(uploadLabelled, async (c) => {
    const { file, label } = c.req.valid('form');
    const uploads = await readUploads(file);
    const items = [];
    for (const upload of uploads) {
      try {
        const { image, inserted } = await ingestImage(
          { db: app.db, blobs: app.blobs, limits: app.config.images },
          { bytes: upload.bytes, label, source: 'upload', originalName: upload.fileName },
        );
        // A labelled upload is a person's explicit verdict, like a validation: it wins over an earlier label.
        const labelled = image.label === label ? image : await app.db.images.setLabel(image.hash, label, 'upload');
        items.push({ ...presentImage(labelled), inserted });
      } catch (error) {
        throw error instanceof ImageError ? namingFile(error, upload.fileName) : error;
      }
    }
    return c.json({ items }, items.some((item) => item.inserted) ? 201 : 200);
  });

  return routes;
}
