import path from 'node:path';
import { z } from 'zod';
import { BACKBONE_NAMES, backboneOutputNamesSchema, PIXEL_SCALINGS } from '../ml/catalogue.js';
import { DEFAULT_PRESET, TRAINING_PRESETS } from './presets.js';

/**
 * The one configuration of catdog. Every object is strict (a typo is an error, not a silently ignored key) and
 * every field has a default and a description: `config.schema.json` is generated from this file, so the
 * descriptions are what users read in their editor.
 */

const URL_SCHEME = /^[a-z][a-z0-9+.-]*:\/\//i;
const DATABASE_SCHEMES = ['sqlite:', 'postgres://', 'postgresql://', 'mysql://'] as const;
const CRON_FIELD_COUNTS = [5, 6];

export function isUrl(value: string): boolean {
  return URL_SCHEME.test(value);
}

function isHttpUrl(value: string): boolean {
  try {
    const { protocol } = new URL(value);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

/**
 * The preset whose values are the schema's own defaults for the preset keys: loading a config fills those keys from
 * training.preset instead (config/load.ts); these single-backbone values are what a schema parse alone, a cnn
 * among them, can take.
 */
const SCHEMA_PRESET = 'fast';

const fraction = (max: number) => z.number().min(0).max(max);

const toggle = <Amount extends Record<string, z.ZodDefault<z.ZodNumber>>>(what: string, enabled: boolean, amount: Amount) => {
  const settings = z.strictObject({ enabled: z.boolean().default(enabled).describe(`Apply ${what} to training images.`), ...amount });
  // Every field has a default, so {} is valid input; TypeScript cannot see that through the generic shape.
  return settings.prefault({} as z.input<typeof settings>).describe(`Random ${what} (training split only, seeded by dataset.seed).`);
};

const splitSchema = z
  .strictObject({
    train: z.number().gt(0).max(1).default(0.7).describe('Fraction of images used for training (> 0).'),
    validation: fraction(1).default(0.2).describe('Fraction of images used for early stopping and model selection.'),
    test: z.number().gt(0).max(1).default(0.1).describe('Fraction of images held out to compare and promote models (> 0).'),
  })
  .prefault({})
  .superRefine((split, ctx) => {
    const sum = split.train + split.validation + split.test;
    if (Math.abs(sum - 1) > 1e-6) {
      ctx.addIssue({
        code: 'custom',
        message: `train + validation + test must sum to 1, got ${Number(sum.toFixed(9))}`,
        input: split,
      });
    }
  })
  .describe('How images are split between train, validation and test; a pure function of the image hash, so growing the data set never moves an image.');

export const augmentationSchema = z
  .strictObject({
    horizontalFlip: toggle('horizontal flips', true, {
      probability: fraction(1)
        .default(0.5)
        .describe(
          "Probability that the cnn's image is mirrored in an epoch (0..1). A backbone's head learns from one cached copy per photo, drawn once: with flips on, that copy is always the mirror image.",
        ),
    }),
    rotation: toggle('rotations', false, {
      maxDegrees: fraction(180).default(15).describe('Largest rotation in degrees, either way (0..180).'),
    }),
    zoom: toggle('zoom', false, {
      maxFraction: fraction(0.5).default(0.15).describe('Largest zoom in or out as a fraction of the side (0..0.5).'),
    }),
    brightness: toggle('brightness changes', false, {
      maxDelta: fraction(1).default(0.2).describe('Largest brightness change as a fraction of full scale (0..1).'),
    }),
    contrast: toggle('contrast changes', false, {
      maxFraction: fraction(1).default(0.2).describe('Largest contrast change as a fraction (0..1).'),
    }),
    grayscale: toggle('grayscale conversion', false, {
      probability: fraction(1).default(0.1).describe('Probability that an image is turned to grayscale (0..1).'),
    }),
  })
  .prefault({})
  .describe('Random changes applied to training images only.');

const datasetSchema = z
  .strictObject({
    imageSize: z
      .int()
      .min(16)
      .max(512)
      .nullable()
      .default(null)
      .describe('Side in pixels images are resized to (16..512); null = the architecture default: 224 for mobilenet, 128 for cnn.'),
    split: splitSchema,
    seed: z.int().default(42).describe('Seed of every random choice (augmentation, shuffling, initialisation), for reproducible runs.'),
    augmentation: augmentationSchema,
  })
  .prefault({})
  .describe('How data set versions are built from the image library.');

const trainingSchema = z
  .strictObject({
    architecture: z
      .enum(['mobilenet', 'cnn'])
      .default('mobilenet')
      .describe('mobilenet: a head trained on features of a pretrained backbone (accurate, fast); cnn: a small network trained from scratch.'),
    preset: z
      .enum(['fast', 'balanced', 'best'])
      .default(DEFAULT_PRESET)
      .describe(
        `Named backbone settings, so that nobody needs backbone names: ${Object.entries(TRAINING_PRESETS)
          .map(([name, preset]) => `${name} = ${preset.summary}`)
          .join('; ')} (held-out errors, training time and serving speed of each in docs/benchmarks.md). ` +
          'It sets training.backbone, training.ensemble, training.backboneImageSize and training.tta wherever the config file or environment does not; ' +
            'a training.backbone set without a preset stands alone at its own size.',
      ),
    backbone: z
      .string()
      .min(1)
      .default(TRAINING_PRESETS[SCHEMA_PRESET].backbone)
      .describe(
        `The pretrained backbone: a catalogue name (${BACKBONE_NAMES.join(', ')}; downloaded once from its published URL, or read from training.backboneDir), ` +
          'or a TensorFlow.js layers or graph model.json (a graph model names its output nodes in training.backboneOutputs), TFLite .tflite or Keras .keras/.h5 file: http(s) URL (downloaded once and cached), file:// URL or path. Default: from training.preset. Env: CATDOG_BACKBONE_URL.',
      ),
    ensemble: z
      .array(z.string().min(1))
      .max(3)
      .default([...TRAINING_PRESETS[SCHEMA_PRESET].ensemble])
      .describe(
        'Further backbones (catalogue names, URLs or paths, like training.backbone) whose features are put beside training.backbone\'s: one head on all of them. ' +
          'Every photo then runs through every backbone (slower training and answers); [] = training.backbone alone. Default: from training.preset. mobilenet only.',
      ),
    backboneDir: z
      .string()
      .default('')
      .describe(
        'Folder holding local copies of catalogue backbones, laid out as their published files (mobilenet_v1_0.75_224/model.json, tflite/tf2_mobilenet_v2_1.0_224_ptq.tflite, ' +
          'efficientnet_lite0_224/model.json, …; docs/architecture.md lists them): a name is then read from there instead of downloaded. "" = download. Env: CATDOG_BACKBONE_DIR.',
      ),
    backboneScaling: z
      .record(z.string().min(1), z.enum(PIXEL_SCALINGS))
      .default({})
      .describe(
        `How backbones given by URL or path want their RGB 0..255 pixels x scaled, keyed by that URL or path: ${PIXEL_SCALINGS.join(', ')} ` +
          '(caffe = BGR minus the ImageNet channel means; none = the model scales inside). Absent: x/127.5-1, as Keras MobileNets and EfficientNet-Lite. Catalogue names know their own; a TFLite file states its own in its input quantization, which is checked.',
      ),
    backboneOutputs: z
      .record(z.string().min(1), backboneOutputNamesSchema)
      .default({})
      .describe(
        'Output nodes of backbones that are TF.js graph models (model.json format graph-model), keyed by their URL or path like training.backboneScaling: ' +
          '{"features": node of the pooled [batch, n] features, "imagenet": node of its 1000 ImageNet class probabilities, if it has them}. ' +
          'Absent: the graph\'s single output is its features, and it has no ImageNet classifier (zero-shot answers and the vote unavailable, "neither" from feature distance only).',
      ),
    head: z.enum(['logistic', 'mlp']).default('logistic').describe('Classifier on top of the backbone features: logistic regression or a small MLP.'),
    headL2: z
      .union([z.literal('cv'), z.number().min(0).max(1)])
      .default('cv')
      .describe(
        'L2 weight on the logistic head\'s weights: cv = chosen by 5-fold cross-validation on the training and validation photos (never the test split) ' +
          'from a small grid, with the epoch count, then the head is trained once more on all of them; or a fixed weight (0..1) with early stopping on the validation split. ' +
          'Logistic head only; with the mlp head, training.zeroShotVote, training.fineTune (which needs the validation split) or fewer than 10 photos, cv means the fixed 1e-4 with early stopping.',
      ),
    tta: z
      .boolean()
      .default(TRAINING_PRESETS[SCHEMA_PRESET].tta)
      .describe('Test-time augmentation: every answer averages P(dog) over the photo and its mirror image (twice the backbone work per photo). Default: from training.preset.'),
    zeroShotVote: z
      .boolean()
      .default(false)
      .describe(
        'The head also takes the backbone\'s own ImageNet classifier\'s cat-vs-dog vote (its cat and dog classes, frozen, inside the saved network): ' +
          'knowledge from 1.2 M ImageNet photos next to what the head learns from yours. Needs a backbone with an ImageNet head (the default MobileNet v1 has one). mobilenet only.',
      ),
    backboneImageSize: z
      .int()
      .min(32)
      .max(512)
      .nullable()
      .default(TRAINING_PRESETS[SCHEMA_PRESET].backboneImageSize)
      .describe(
        'Side in pixels of the images the backbone (and training.ensemble) sees; null = its own (224 for the MobileNets). A fully convolutional backbone takes larger photos, ' +
          'in which the animal looks larger than in its ImageNet training: MobileNet v1 0.75 at 288 px had 29% lower validation log loss on kaggle-dev (docs/benchmarks.md). ' +
          'The work per photo grows with the side squared. Default: from training.preset. mobilenet only.',
      ),
    batchSize: z.int().min(1).max(1024).default(32).describe('Images per training step (1..1024).'),
    epochs: z.int().min(1).max(1000).default(20).describe('Largest number of passes over the training split (1..1000).'),
    learningRate: z.number().gt(0).max(1).default(0.001).describe('Adam learning rate (> 0, <= 1).'),
    earlyStoppingPatience: z
      .int()
      .min(0)
      .max(100)
      .default(3)
      .describe('Stop after this many epochs without validation improvement and keep the best epoch (0..100; 0 = never stop early).'),
    fineTune: z
      .strictObject({
        enabled: z
          .boolean()
          .default(false)
          .describe('After training the head, also train the last backbone blocks with it (mobilenet with one backbone only; the saved model holds the fine-tuned blocks).'),
        // Measured on 1,000 kaggle-dev photos per class with MobileNet v1 0.75 (docs/benchmarks.md): 2 blocks at 5e-5 or
        // 1e-5 never beat the head alone on validation loss; 1 block at 1e-5 did.
        blocks: z.int().min(1).max(13).default(1).describe('How many of the last depthwise-separable backbone blocks are unfrozen (1..13); their BatchNormalization statistics stay frozen.'),
        learningRate: z.number().gt(0).max(1).default(0.00001).describe('Learning rate while fine-tuning; small, to keep the pretrained weights (> 0, <= 1).'),
        epochs: z.int().min(1).max(1000).default(5).describe('Largest number of fine-tuning epochs (1..1000); early stopping on validation loss as for the head.'),
      })
      .prefault({})
      .describe('Optional second phase that fine-tunes the backbone\'s top blocks on cached activations of the frozen blocks below them (mobilenet only).'),
    target: z
      .enum(['local', 'queue', 'vertex'])
      .default('local')
      .describe('Where training runs: local (this process), queue (a worker through jobs) or vertex (a Vertex AI / Kubeflow pipeline).'),
    promotion: z
      .strictObject({
        metric: z.enum(['accuracy', 'f1', 'rocAuc']).default('accuracy').describe('Test-split metric that decides whether a new model replaces the serving one.'),
        minImprovement: z
          .number()
          .min(0)
          .max(1)
          .default(0)
          .describe('How much better (absolute, 0..1) the new model must score on the same test split to be promoted.'),
      })
      .prefault({})
      .describe('When a trained model is promoted to serving.'),
  })
  .superRefine((training, ctx) => {
    for (const problem of trainingConflicts(training)) ctx.addIssue({ code: 'custom', message: problem.message, path: problem.path, input: training });
  })
  .prefault({})
  .describe('Model training.');

/**
 * Training settings that are valid alone but not together. Checked when the config loads and again on the
 * parameters a run gets, since command-line and API overrides (e.g. --architecture cnn) come later.
 */
export function trainingConflicts(training: {
  architecture: 'mobilenet' | 'cnn';
  ensemble: readonly string[];
  backboneImageSize: number | null;
  zeroShotVote: boolean;
  fineTune: { enabled: boolean };
}): { path: string[]; message: string }[] {
  const problems: { path: string[]; message: string }[] = [];
  if (training.architecture === 'cnn' && training.fineTune.enabled) {
    problems.push({ path: ['fineTune', 'enabled'], message: 'fine-tuning needs training.architecture mobilenet (the cnn has no pretrained backbone); set training.fineTune.enabled to false to train a cnn' });
  }
  if (training.architecture === 'cnn' && training.ensemble.length > 0) {
    problems.push({ path: ['ensemble'], message: 'a backbone ensemble needs training.architecture mobilenet (the cnn has no backbone); set training.ensemble to [] to train a cnn' });
  }
  if (training.architecture === 'cnn' && training.backboneImageSize !== null) {
    problems.push({ path: ['backboneImageSize'], message: 'the cnn has no backbone and takes dataset.imageSize px images; set training.backboneImageSize to null to train a cnn' });
  }
  if (training.architecture === 'cnn' && training.zeroShotVote) {
    problems.push({ path: ['zeroShotVote'], message: 'the zero-shot vote comes from a pretrained backbone\'s ImageNet head, which the cnn has not; set training.zeroShotVote to false to train a cnn' });
  }
  if (training.fineTune.enabled && training.ensemble.length > 0) {
    problems.push({ path: ['fineTune', 'enabled'], message: 'fine-tuning works on one backbone, but training.ensemble adds more; set training.ensemble to [] or training.fineTune.enabled to false' });
  }
  return problems;
}

const databaseSchema = z
  .strictObject({
    url: z
      .string()
      .default('')
      .refine((url) => url === '' || DATABASE_SCHEMES.some((scheme) => url.startsWith(scheme)), {
        message: 'must be "" (SQLite file <home>/catdog.db), sqlite:<path>, postgres://…, postgresql://… or mysql://…',
      })
      .describe('Database URL: "" = sqlite:<home>/catdog.db; sqlite:<path>, postgres(ql)://user:pass@host/db or mysql://user:pass@host/db. Env: CATDOG_DATABASE_URL.'),
  })
  .prefault({})
  .describe('Where images, data sets, runs, models and predictions are recorded.');

const storageSchema = z
  .discriminatedUnion('kind', [
    z
      .strictObject({
        kind: z.literal('local').describe('Blobs are files on this machine.'),
        path: z.string().default('').describe('Folder of the blobs; "" = <home>/blobs. Relative paths resolve against the config file folder.'),
      })
      .describe('Local folder.'),
    z
      .strictObject({
        kind: z.literal('s3').describe('Blobs live in an S3-compatible bucket.'),
        bucket: z.string().min(1).describe('Bucket name (required).'),
        prefix: z.string().default('').describe('Key prefix inside the bucket, e.g. "catdog/".'),
        region: z.string().min(1).default('us-east-1').describe('Bucket region.'),
        endpoint: z.url().optional().describe('Endpoint URL of an S3-compatible service (MinIO, R2…); omit for AWS.'),
        forcePathStyle: z.boolean().default(false).describe('Address the bucket as <endpoint>/<bucket> (needed by MinIO and most local S3 servers).'),
      })
      .describe('S3 or S3-compatible bucket; credentials come from the usual AWS environment or profile.'),
  ])
  .prefault({ kind: 'local' })
  .describe('Where image bytes, manifests, features and models are stored (content-addressed blobs).');

const jobsSchema = z
  .strictObject({
    kind: z.enum(['inline', 'bullmq']).default('inline').describe('inline: jobs run in the process that asks for them; bullmq: jobs go to a Redis queue served by `catdog worker`.'),
    redisUrl: z.string().min(1).default('redis://127.0.0.1:6379').describe('Redis URL for bullmq. Env: CATDOG_REDIS_URL.'),
    concurrency: z.int().min(1).max(64).default(1).describe('Jobs a worker runs at the same time (1..64); training is CPU bound, keep it low.'),
    queueName: z.string().min(1).default('catdog').describe('Name of the bullmq queue.'),
    lockDurationMs: z
      .int()
      .min(1000)
      .default(30_000)
      .describe('bullmq: a worker that stops renewing its job lock this long (killed, frozen) loses the job to another worker (>= 1000 ms).'),
    stalledIntervalMs: z
      .int()
      .min(500)
      .default(30_000)
      .describe('How often workers look for jobs left behind (>= 500 ms): bullmq, jobs whose lock lapsed; inline, jobs in the database that a stopped process handed back or was running.'),
  })
  .prefault({})
  .describe('Background jobs (imports, training).');

const pipelineSchema = z
  .strictObject({
    root: z.string().default('').describe('Folder of local pipeline runs; "" = <home>/pipeline-runs.'),
    region: z.string().min(1).default('us-central1').describe('Google Cloud region of Vertex AI pipelines.'),
    project: z.string().default('').describe('Google Cloud project of Vertex AI pipelines; required only to submit to Vertex.'),
    image: z.string().min(1).default('ghcr.io/catdog/catdog:latest').describe('Container image every pipeline step runs.'),
    kubeflowUrl: z
      .string()
      .default('')
      .refine((url) => url === '' || isHttpUrl(url), { message: 'must be "" (not used) or an http(s):// URL' })
      .describe('Kubeflow Pipelines API URL to submit compiled pipelines to; "" = not used.'),
  })
  .prefault({})
  .describe('Training pipelines compiled to Kubeflow Pipelines v2 (local runner, Kubeflow or Vertex AI).');

/** A per-client token bucket: `burst` at once, refilled at `requestsPerMinute` (0 = no limit). */
const tokenBucketFields = (defaults: { requestsPerMinute: number; burst: number }, describe: { rate: string; burst: string }) => ({
  requestsPerMinute: z.int().min(0).default(defaults.requestsPerMinute).describe(`${describe.rate}; 0 turns the limit off.`),
  burst: z.int().min(1).default(defaults.burst).describe(describe.burst),
});

const serverSchema = z
  .strictObject({
    host: z.string().min(1).default('127.0.0.1').describe('Interface the web server listens on; 0.0.0.0 exposes it to the network. Env: CATDOG_HOST.'),
    port: z.int().min(1).max(65535).default(8080).describe('TCP port of the web server (1..65535). Env: CATDOG_PORT.'),
    anonymousViewer: z.boolean().default(false).describe('Let requests without a token act as viewer for reads (GET/HEAD only; never for writes).'),
    localViewer: z
      .boolean()
      .default(true)
      .describe(
        'While the server is bound to a loopback address (the default 127.0.0.1), let token-less requests from this machine act as viewer (predict and read), unless a browser says they come from another site. Curator and admin actions always need a token.',
      ),
    sessionHours: z.number().gt(0).max(24 * 90).default(12).describe('How long a web sign-in lasts, in hours.'),
    maxFilesPerRequest: z
      .int()
      .min(1)
      .max(10_000)
      .default(64)
      .describe('Most photos in one upload request (POST /api/v1/predictions, POST /api/v1/images); more are refused with 413 too_many_files before any is decoded.'),
    rateLimit: z
      .strictObject({
        ...tokenBucketFields({ requestsPerMinute: 1200, burst: 200 }, {
          rate: 'Sustained API requests per minute per token (or per IP without one)',
          burst: 'Requests a client may make at once before the per-minute rate applies (a page of thumbnails).',
        }),
        refusedImageCost: z
          .int()
          .min(0)
          .default(50)
          .describe(
            'Requests each uploaded photo refused as unusable (image_too_complex, image_too_many_pixels, image_corrupt, …) counts as besides its request, for viewers and anonymous callers (curators and admins are not penalised), down to burst requests in debt: a client sending only refused files gets about one answered per refusedImageCost requests of the rate (one every 2.5 s at the defaults), while an honest client\'s one bad photo spends a quarter of the default burst. 0: refusals count as ordinary requests.',
          ),
      })
      .prefault({})
      .describe('Per-client token bucket on /api/v1; over it the API answers 429 rate_limited with Retry-After, held back up to a second, and closes the connection without reading the body.'),
    allowedHosts: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'Host names (or addresses) requests may carry in Host besides this machine\'s loopback names and server.host (bound to 0.0.0.0 or ::, also its host name and interface addresses): the public name of a reverse proxy, a LAN name. Others are refused with 421 host_not_allowed (against DNS rebinding). "*" allows any. Env: comma-separated.',
      ),
    signInRateLimit: z
      .strictObject(
        tokenBucketFields({ requestsPerMinute: 10, burst: 10 }, {
          rate: 'Sustained sign-in attempts (POST /signin) per minute per client address',
          burst: 'Sign-in attempts a client address may make at once before the per-minute rate applies.',
        }),
      )
      .prefault({})
      .describe('Per-address token bucket on POST /signin, against token guessing and floods; over it the answer is 429 rate_limited with Retry-After.'),
  })
  .prefault({})
  .describe('Web UI and HTTP API.');

const servingSchema = z
  .strictObject({
    neither: z
      .strictObject({
        enabled: z.boolean().default(true).describe('Answer "neither" for photos that show neither a cat nor a dog.'),
        // MobileNet v1 0.75 puts ≥ 0.012 on cats + dogs for 400 of 400 held-out Kaggle photos, < 0.01 for 16 of 19 scikit-image samples that are neither.
        threshold: fraction(1)
          .default(0.01)
          .describe(
            'Below this share of its probability on cat and dog classes, the backbone\'s ImageNet head calls a photo "neither" (0..1; `catdog models neither-threshold` suggests one from validated predictions). ' +
              'Used for zero-shot answers, models trained before thresholds were learned and models trained on fewer than 1,200 photos; a model trained on more carries its own, learned from its training photos (each backbone\'s classifier spreads its probability differently), and this value does not change how it serves.',
          ),
        farFromClasses: z
          .boolean()
          .default(true)
          .describe('Also answer "neither" when the photo\'s features are farther from both class centroids than any training photo (models trained with this version or later).'),
      })
      .prefault({})
      .describe('Out-of-scope photos.'),
  })
  .prefault({})
  .describe('How predictions are answered.');

const retrainingSchema = z
  .strictObject({
    enabled: z.boolean().default(false).describe('Retrain automatically once enough user-validated images have arrived.'),
    minNewValidated: z.int().min(1).default(100).describe('Validated images since the last training run needed to retrain (>= 1).'),
    cron: z
      .string()
      .default('')
      .refine((cron) => cron === '' || CRON_FIELD_COUNTS.includes(cron.trim().split(/\s+/).length), {
        message: 'must be "" (check after each validation) or a cron expression of 5 or 6 fields, e.g. "0 3 * * *"',
      })
      .describe('When to check for retraining, as a cron expression ("0 3 * * *" = 03:00 daily); "" = after each validation.'),
  })
  .prefault({})
  .describe('Automatic retraining from user feedback.');

export const configSchema = z
  .strictObject({
    $schema: z.string().optional().describe('JSON schema of this file, for editors; ignored by catdog.'),
    home: z
      .string()
      .min(1)
      .default('./.catdog')
      .describe('Folder where everything local lives (database, blobs, caches, pipeline runs). Relative to the config file. Env: CATDOG_HOME.'),
    images: z
      .strictObject({
        maxBytes: z.int().min(1).default(20 * 1024 * 1024).describe('Largest accepted upload in bytes.'),
        maxPixels: z
          .int()
          .min(1)
          .default(25_000_000)
          .describe(
            'Largest accepted width × height, read from the header before any decode (a 5 KB PNG can declare 40 megapixels). ' +
              '25 MP takes 12–24 MP camera and phone photos; raise it for full-resolution 48/50 MP phone photos.',
          ),
        maxJpegScans: z
          .int()
          .min(1)
          .default(100)
          .describe('Most scans a JPEG may have, counted from its markers before decoding: baseline JPEGs have 1–3, progressive ones about 10; every scan is one more pass over the whole image.'),
        maxJpegScanPixels: z
          .int()
          .min(1)
          .default(1_000_000_000)
          .describe('Largest width × height × scans of a JPEG, the work of decoding a progressive one (a 12 MP photo of 10 scans: 120 million).'),
        decodeConcurrency: z
          .int()
          .min(1)
          .max(64)
          .default(4)
          .describe(
            "Uploads (predictions, labelled photos, thumbnails) the server decodes at once, shared in turn between clients (token, else address), each using at most half: " +
              "one client's many uploads cannot hold every decode while another's waits. 4 = Node's thread pool (UV_THREADPOOL_SIZE), on which the decodes run.",
          ),
      })
      .prefault({})
      .describe('Limits on accepted photos.'),
    dataset: datasetSchema,
    training: trainingSchema,
    database: databaseSchema,
    storage: storageSchema,
    jobs: jobsSchema,
    pipeline: pipelineSchema,
    server: serverSchema,
    serving: servingSchema,
    retraining: retrainingSchema,
  })
  .describe('catdog configuration. Every key is optional; precedence: defaults < this file < CATDOG_* environment variables.');

export type CatdogConfig = z.infer<typeof configSchema>;

const ARCHITECTURE_IMAGE_SIZE: Record<CatdogConfig['training']['architecture'], number> = { mobilenet: 224, cnn: 128 };

export function effectiveImageSize(config: CatdogConfig): number {
  return config.dataset.imageSize ?? ARCHITECTURE_IMAGE_SIZE[config.training.architecture];
}

export function databaseUrl(config: CatdogConfig): string {
  return config.database.url === '' ? `sqlite:${path.resolve(config.home, 'catdog.db')}` : config.database.url;
}

/** The local blob folder, or undefined when blobs live in S3. */
export function blobRoot(config: CatdogConfig): string | undefined {
  if (config.storage.kind !== 'local') return undefined;
  return config.storage.path === '' ? path.resolve(config.home, 'blobs') : path.resolve(config.storage.path);
}

export function pipelineRoot(config: CatdogConfig): string {
  return config.pipeline.root === '' ? path.resolve(config.home, 'pipeline-runs') : path.resolve(config.pipeline.root);
}
