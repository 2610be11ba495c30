import { combineBackbones, loadBackbone, type Backbone, type LoadBackboneOptions } from './backbone.js';
import { checkBackboneInChildProcess, type BackboneCheckOptions } from './backbone-check.js';
import { catalogueBackbone, resolveBackbone, type BackboneResolution, type ResolvedBackbone } from './catalogue.js';

/** What a model card records of a backbone given by URL or path: the scaling and output nodes it was trained with. */
export type DeclaredBackbone = Omit<ResolvedBackbone, 'source'>;

/**
 * A backbone to load: its catalogue name, URL or path, alone or with what a model card recorded of it. The card's
 * record wins, as the model was trained so; the config's entries serve where it has none (a card written before cards
 * recorded them, a training run).
 */
export type BackboneRequest = string | ({ source: string } & DeclaredBackbone);

const declaredOf = ({ scaling, outputs }: DeclaredBackbone): DeclaredBackbone => ({ ...(scaling ? { scaling } : {}), ...(outputs ? { outputs } : {}) });

/**
 * Where a request's backbone comes from and how it is declared, and the name a provider keeps it under: its own,
 * unless a card declares it otherwise than the config does (then two models may need two loads of one file).
 */
function resolveRequest(request: BackboneRequest, resolution: BackboneResolution = { backboneDir: '', scaling: {} }): { name: string; source: string; declared: DeclaredBackbone } {
  const nameOrSource = typeof request === 'string' ? request : request.source;
  const resolved = resolveBackbone(nameOrSource, resolution);
  const fromConfig = declaredOf(resolved);
  const declared = typeof request === 'string' ? fromConfig : { ...fromConfig, ...declaredOf(request) };
  const same = JSON.stringify(declared) === JSON.stringify(fromConfig);
  return { name: same ? nameOrSource : `${nameOrSource} ${JSON.stringify(declared)}`, source: resolved.source, declared };
}

/**
 * Loads each backbone once per process: several models and the zero-shot fallback share it. Sources are catalogue
 * names, URLs or paths, as model cards and training parameters record them.
 */
export class BackboneProvider {
  private readonly loaded = new Map<string, Promise<Backbone>>();

  /**
   * Without `resolution`, catalogue names resolve to their published URLs and every other source takes x/127.5−1.
   * With `check`, each backbone is first loaded and run in a child process (once per content: the verdict is kept
   * in the cache), so that one that crashes TensorFlow is refused instead of taking this process down.
   */
  constructor(private readonly options: LoadBackboneOptions & { resolution?: BackboneResolution; check?: Omit<BackboneCheckOptions, 'cacheDir'> }) {}

  /** The backbone fed `inputSize` px images (absent: its own size, which the zero-shot fallback also uses). */
  async get(request: BackboneRequest, inputSize?: number): Promise<Backbone> {
    const { check, resolution, ...options } = this.options;
    const { name, source, declared } = resolveRequest(request, resolution);
    const load = async (sized: { inputSize?: number }) => {
      if (check) await checkBackboneInChildProcess(source, { ...declared, ...sized }, { ...check, cacheDir: options.cacheDir, ...(options.onDownload ? { onDownload: options.onDownload } : {}) });
      return loadBackbone(source, { ...options, ...declared, ...sized });
    };
    if (inputSize === undefined) return this.once(name, () => load({}));
    // Loaded at its own size already (the zero-shot fallback, an earlier model): that one serves. Otherwise the
    // backbone is loaded at the size asked for only: loading its own size first to compare cost a fresh training
    // of a 288 px preset a whole extra graph build and backbone check per backbone.
    const own = await this.loaded.get(name)?.catch(() => undefined);
    if (own?.inputSize === inputSize) return own;
    const sized = await this.once(`${name}@${inputSize}px`, () => load({ inputSize }));
    // The size asked for was the backbone's own (its id names no other side): a later request without a size (the
    // zero-shot fallback) gets this one instead of a second copy.
    if (!sized.id.split('-').includes(`${inputSize}px`) && !this.loaded.has(name)) this.loaded.set(name, Promise.resolve(sized));
    return sized;
  }

  /** An ensemble: the backbones of `requests` as one, their features side by side in order (one source: itself). */
  combined(requests: readonly BackboneRequest[], inputSize?: number): Promise<Backbone> {
    if (requests.length === 1) return this.get(requests[0]!, inputSize);
    const key = JSON.stringify([requests.map((request) => resolveRequest(request, this.options.resolution).name), inputSize]);
    return this.once(key, async () => combineBackbones(await Promise.all(requests.map((request) => this.get(request, inputSize)))));
  }

  /**
   * What the config declares of a backbone given by URL or path, for its models' cards: a process without those
   * entries still loads it as trained. A catalogue name knows its own and records nothing.
   */
  declared(nameOrSource: string): DeclaredBackbone {
    const { resolution } = this.options;
    if (!resolution || catalogueBackbone(nameOrSource)) return {};
    return resolveRequest(nameOrSource, resolution).declared;
  }

  private once(key: string, load: () => Promise<Backbone>): Promise<Backbone> {
    const known = this.loaded.get(key);
    if (known) return known;
    const loading = load();
    // A failed load (e.g. offline) must not be remembered: the next request tries again.
    loading.catch(() => this.loaded.delete(key));
    this.loaded.set(key, loading);
    return loading;
  }
}
