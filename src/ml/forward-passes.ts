import type { Tensor2D, Tensor4D } from '@tensorflow/tfjs';
import type { Backbone, ForwardPass } from './backbone.js';
import type { LayersGraph } from './graph/from-layers.js';
import { type DebugLogger, type GraphSession, loadGraphSession } from './graph/session.js';
import type { Tensorflow } from './tf.js';

/** A backbone's inference: its forward passes, how they run, and a dispose for what they hold. */
export interface ForwardPasses extends Pick<Backbone, 'features' | 'featuresAndImagenet' | 'imagenet'> {
  forwardPass: ForwardPass;
  dispose(): void;
}

export const messageOf = (error: unknown): string => (error instanceof Error ? error.message : String(error));

type GraphSignature = 'features' | 'features_and_imagenet' | 'imagenet';
type GraphOutput = 'features' | 'imagenet';
const FEATURE_SIGNATURES = { features: ['features'] } as const;
const IMAGENET_SIGNATURES = { ...FEATURE_SIGNATURES, features_and_imagenet: ['features', 'imagenet'], imagenet: ['imagenet'] } as const;

/**
 * A backbone's frozen graph (RGB 0..255 pixels in; `features` and, `withImagenet`, `imagenet` out) loaded into a
 * TensorFlow session, as the passes every inference runs. Throws when the graph cannot be written or loaded.
 */
export async function loadGraphPasses(
  tf: Tensorflow,
  graph: LayersGraph,
  withImagenet: boolean,
  { cacheDir, id, logger }: { cacheDir: string; id: string; logger?: DebugLogger },
): Promise<ForwardPasses> {
  const session: GraphSession<GraphSignature, GraphOutput> = await loadGraphSession<GraphSignature, GraphOutput>(
    tf,
    graph,
    withImagenet ? IMAGENET_SIGNATURES : FEATURE_SIGNATURES,
    { cacheDir, name: id, logger },
  );
  const features = (rgb: Tensor4D) => session.run('features', rgb).features as Tensor2D;
  return {
    forwardPass: { kind: 'graph', folder: session.folder },
    features,
    featuresAndImagenet: withImagenet
      ? (rgb) => {
          const { features: featureTensor, imagenet } = session.run('features_and_imagenet', rgb);
          return { features: featureTensor as Tensor2D, imagenet: imagenet as Tensor2D };
        }
      : (rgb) => ({ features: features(rgb) }),
    ...(withImagenet ? { imagenet: (rgb: Tensor4D) => session.run('imagenet', rgb).imagenet as Tensor2D } : {}),
    dispose: () => session.dispose(),
  };
}
