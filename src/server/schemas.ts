import { z } from '@hono/zod-openapi';

export const ErrorSchema = z
  .object({
    error: z.object({
      code: z.string().openapi({ example: 'image_unsupported_format' }),
      message: z.string(),
      file: z.string().optional().openapi({ description: 'The uploaded file the error is about.' }),
    }),
  })
  .openapi('Error');

export const errorResponse = (description: string) => ({ content: { 'application/json': { schema: ErrorSchema } }, description });
export const jsonContent = <T extends z.ZodType>(schema: T, description: string) => ({ content: { 'application/json': { schema } }, description });

export const LabelSchema = z.enum(['cat', 'dog']);
export const FeedbackLabelSchema = z.enum(['cat', 'dog', 'neither']);
export const ImageHashSchema = z.string().regex(/^[0-9a-f]{64}$/, 'must be a sha256 hex digest').openapi({ example: 'ab'.repeat(32) });

const UploadedFile = z.instanceof(File).openapi({ type: 'string', format: 'binary' });
/** One file or many under the same field name, as `curl -F file=@a.jpg -F file=@b.jpg` sends them. */
export const UploadedFiles = z
  .union([UploadedFile, z.array(UploadedFile).min(1)], { error: 'attach at least one photo as a multipart field named "file"' })
  .transform((files) => (Array.isArray(files) ? files : [files]))
  .openapi({ type: 'array', items: { type: 'string', format: 'binary' } });

export const pagingQuery = {
  limit: z.coerce.number().int().min(1).max(200).default(50).openapi({ description: 'Page size (1..200).' }),
  offset: z.coerce.number().int().min(0).default(0),
};

const probability = z.number().min(0).max(1);
/** JSON has no NaN: a metric undefined for a one-class split arrives as null. */
const metricValue = z.number().nullable();

export const PredictionSchema = z
  .object({
    id: z.string(),
    label: FeedbackLabelSchema.openapi({ description: '"neither" when the photo shows neither a cat nor a dog (see reason)' }),
    reason: z.enum(['imagenet_mass', 'far_from_classes']).optional().openapi({ description: 'Why the photo is "neither"' }),
    confidence: probability,
    probabilities: z.object({ cat: probability, dog: probability }),
    modelId: z.string(),
    modelVersion: z.number().int().nullable(),
    imageHash: z.string(),
    imageUrl: z.string(),
    latencyMs: z.number(),
    fileName: z.string().optional(),
    createdAt: z.string().optional(),
    validatedLabel: FeedbackLabelSchema.nullable().optional(),
    validatedAt: z.string().nullable().optional(),
  })
  .openapi('Prediction');

export const RefusedFileSchema = z
  .object({
    index: z.number().int().openapi({ description: 'Position of the file in the request, from 0.' }),
    file: z.string().openapi({ description: 'Its file name as uploaded.' }),
    code: z.string().openapi({ example: 'image_corrupt', description: 'The code a request with this file alone would be refused with.' }),
    message: z.string(),
  })
  .openapi('RefusedFile');

export const ReviewItemSchema = PredictionSchema.extend({
  image: z.object({ width: z.number().int(), height: z.number().int(), source: z.string() }),
  serving: z
    .object({ modelId: z.string(), version: z.number().int().nullable(), pDog: probability })
    .nullable()
    .openapi({ description: 'What the serving model says of the photo now; null while it has not scored it' }),
}).openapi('ReviewItem');

export const ImageSchema = z
  .object({
    hash: z.string(),
    label: LabelSchema.nullable(),
    source: z.string(),
    originalName: z.string().nullable(),
    format: z.string(),
    width: z.number().int(),
    height: z.number().int(),
    byteSize: z.number().int(),
    createdAt: z.string(),
    deletedAt: z.string().nullable().openapi({ description: 'When a curator took the photo out of the data set (built versions keep it)' }),
    perceptualHash: z.string().nullable().openapi({ description: '64-bit dHash (16 hex digits) for near-duplicates; null until computed' }),
    pDog: probability.nullable().openapi({ description: 'The latest P(dog) of model scoreModelId; null until scored' }),
    scoreModelId: z.string().nullable(),
    url: z.string(),
    thumbnailUrl: z.string(),
  })
  .openapi('Image');

const labelled = z.object({ hash: z.string(), label: LabelSchema });
export const VersionDifferenceSchema = z
  .object({
    added: z.array(labelled),
    removed: z.array(labelled),
    relabelled: z.array(z.object({ hash: z.string(), from: LabelSchema, to: LabelSchema })),
  })
  .openapi('VersionDifference');

const ChangeCountsSchema = z
  .object({ added: z.number().int(), removed: z.number().int(), relabelled: z.number().int() })
  .openapi({ description: 'How many photos each list of changes holds in all; `changes` holds the page asked for of each' });

export const DatasetHealthSchema = z
  .object({
    balance: z.object({ cat: z.number().int(), dog: z.number().int(), unlabelled: z.number().int().openapi({ description: 'Photos without a label (waiting for review, or neither)' }) }),
    nearDuplicates: z.object({
      maxDistance: z.number().int().openapi({ description: 'Photos whose 64-bit perceptual hashes are at most this many bits apart are grouped' }),
      notHashed: z.number().int().openapi({ description: 'Photos not hashed yet (imported from a folder, or stored before perceptual hashes were kept); every request hashes another batch' }),
      total: z.number().int().openapi({ description: 'Groups found in all' }),
      conflicting: z.number().int().openapi({ description: 'Groups found in all whose members are labelled cat and dog' }),
      groups: z.array(
        z.object({
          distance: z.number().int().openapi({ description: 'The largest distance in bits between a member and the first one (0: the same picture as other bytes)' }),
          conflicting: z.boolean().openapi({ description: 'Members labelled cat and dog' }),
          members: z.array(ImageSchema),
        }),
      ).openapi({ description: 'The page asked for (limit, offset) of the groups, conflicting groups first, then the largest' }),
    }),
    sinceLatestVersion: z
      .object({
        versionId: z.number().int(),
        newLabels: z.number().int().openapi({ description: 'Photos added, removed or relabelled since that version: what the next build would change' }),
        summary: z.string().openapi({ example: '12 new labels since v3' }),
        counts: ChangeCountsSchema,
        changes: VersionDifferenceSchema,
      })
      .nullable()
      .openapi({ description: 'Null while no version is built' }),
    versionDifference: z
      .object({ from: z.number().int(), to: z.number().int(), counts: ChangeCountsSchema, changes: VersionDifferenceSchema })
      .nullable()
      .openapi({ description: 'Between ?from= and ?to= (default: the two newest versions); null while fewer than two are built' }),
  })
  .openapi('DatasetHealth');

const labelCounts = z.object({ cat: z.number().int(), dog: z.number().int() });
export const SplitCountsSchema = z.object({ train: labelCounts, validation: labelCounts, test: labelCounts }).openapi('SplitCounts');

export const DatasetSchema = z
  .object({
    id: z.number().int(),
    createdAt: z.string(),
    imageCount: z.number().int(),
    params: z
      .object({ split: z.object({ train: z.number(), validation: z.number(), test: z.number() }), seed: z.number().int() })
      .openapi({ description: 'What decides which photo is in which split. Image size and augmentation are settings of the training run.' }),
    counts: SplitCountsSchema,
  })
  .openapi('DatasetVersion');

export const SuspiciousImageSchema = z
  .object({
    hash: z.string(),
    label: LabelSchema.openapi({ description: 'The label the dataset version holds' }),
    pDog: probability,
    pLabel: probability.openapi({ description: "The promoted model's probability of that label" }),
    loss: z.number().openapi({ description: 'Binary cross-entropy of the label under the model: the higher, the more it disagrees' }),
    imageUrl: z.string(),
    thumbnailUrl: z.string(),
  })
  .openapi('SuspiciousImage');

const amount = (max: number) => z.number().min(0).max(max);
const toggle = <Shape extends z.ZodRawShape>(shape: Shape) => z.object({ enabled: z.boolean().optional(), ...shape }).partial();
export const AugmentationRequestSchema = z
  .object({
    horizontalFlip: toggle({ probability: amount(1) }),
    rotation: toggle({ maxDegrees: amount(180) }),
    zoom: toggle({ maxFraction: amount(0.5) }),
    brightness: toggle({ maxDelta: amount(1) }),
    contrast: toggle({ maxFraction: amount(1) }),
    grayscale: toggle({ probability: amount(1) }),
  })
  .partial()
  .openapi('AugmentationSettings', { description: 'Only what differs from the configured augmentation.' });

/** A field a build request used to take: documented so that clients see where it went, refused when sent. */
const movedToTraining = (where: string) =>
  z.unknown().optional().openapi({ deprecated: true, description: `No longer a dataset setting; sending it is refused with 422 \`setting_moved\`. ${where}` });

export const BuildDatasetSchema = z
  .object({
    split: z.object({ train: z.number().gt(0).max(1), validation: z.number().min(0).max(1), test: z.number().gt(0).max(1) }).optional(),
    seed: z.number().int().optional(),
    imageSize: movedToTraining('Image size is a setting of the training run: `imageSize` of POST /api/v1/training-runs (default: dataset.imageSize in the config).'),
    augmentation: movedToTraining('Augmentation is a setting of training: dataset.augmentation in the config.'),
  })
  .openapi('BuildDataset');

export const EpochSchema = z
  .object({
    epoch: z.number().int(),
    loss: z.number().nullable(),
    accuracy: z.number().nullable(),
    valLoss: z.number().nullable(),
    valAccuracy: z.number().nullable(),
    durationMs: z.number(),
    totalEpochs: z.number().int().nullable().optional().describe('How many epochs the run expected when it recorded this one (fine-tuning adds its own); null if unknown.'),
  })
  .openapi('Epoch');

export const RunSchema = z
  .object({
    id: z.string(),
    datasetId: z.number().int(),
    status: z.enum(['queued', 'running', 'succeeded', 'failed', 'cancelled']),
    params: z.record(z.string(), z.unknown()),
    codeVersion: z.string(),
    createdAt: z.string(),
    startedAt: z.string().nullable(),
    finishedAt: z.string().nullable(),
    durationMs: z.number().nullable(),
    error: z.string().nullable(),
    metrics: z.record(z.string(), z.unknown()).nullable(),
    modelId: z.string().nullable(),
    jobId: z.string().nullable().openapi({ description: 'The queue job training it (GET /jobs/{id}); null for runs trained by `catdog train` itself.' }),
    warnings: z
      .array(
        z
          .object({
            code: z.enum(['degenerate_model']),
            summary: z.string().openapi({ example: 'degenerate: predicts only cat' }),
            reason: z.string().openapi({ example: 'degenerate: it answers cat for all 27 test photos (13 of them dogs)' }),
          })
          .openapi('RunWarning'),
      )
      .openapi({ description: 'What is wrong with a succeeded run\'s outcome: degenerate_model when its model answers one class for every test photo (registered, never promoted automatically). Empty otherwise.' }),
  })
  .openapi('TrainingRun');

export const StartRunSchema = z
  .object({
    datasetId: z.number().int().positive().optional(),
    architecture: z.enum(['mobilenet', 'cnn']).optional(),
    epochs: z.number().int().min(1).max(1000).optional(),
    learningRate: z.number().gt(0).max(1).optional(),
    batchSize: z.number().int().min(1).max(1024).optional(),
    imageSize: z.number().int().min(16).max(512).optional().openapi({ description: 'Side in pixels the cnn trains at (a backbone takes its own input size). Default: dataset.imageSize in the config, else the architecture default.' }),
  })
  .openapi('StartTrainingRun');

export const MetricsSchema = z
  .object({
    accuracy: metricValue,
    precision: metricValue,
    recall: metricValue,
    f1: metricValue,
    rocAuc: metricValue,
    count: z.number().int(),
    confusionMatrix: z.object({ labels: z.array(z.string()), matrix: z.array(z.array(z.number().int())) }),
  })
  .partial()
  .openapi('ModelMetrics');

export const ModelSchema = z
  .object({
    id: z.string(),
    version: z.number().int(),
    name: z.string(),
    architecture: z.string(),
    datasetId: z.number().int(),
    runId: z.string().nullable(),
    params: z.record(z.string(), z.unknown()),
    metrics: MetricsSchema,
    createdAt: z.string(),
    serving: z.boolean(),
    decodeId: z.string().nullable().openapi({
      description:
        "The image decode whose pixels the model was trained on (catdog's DECODE_ID: it differs with and without the native " +
        'JPEG decoder). null when unknown: imported models, and models registered before catdog recorded it',
      example: 'squash-linear',
    }),
  })
  .openapi('Model');

export const PromotionSchema = z
  .object({
    id: z.number().int(),
    modelId: z.string(),
    promotedAt: z.string(),
    reason: z.string(),
    actor: z.string(),
    previousModelId: z.string().nullable(),
  })
  .openapi('Promotion');

export const RocCurveSchema = z
  .object({
    modelId: z.string(),
    datasetId: z.number().int(),
    split: z.literal('test'),
    rocAuc: metricValue,
    points: z.array(z.object({ falsePositiveRate: z.number(), truePositiveRate: z.number(), threshold: z.number() })),
  })
  .openapi('RocCurve');
