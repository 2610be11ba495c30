import { combineBackbones, loadBackbone, type Backbone, type LoadBackboneOptions } from './backbone.js';
import { checkBackboneInChildProcess, type BackboneCheckOptions } from './backbone-check.js';
import { resolveBackbone, type BackboneResolution } from './catalogue.js';

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
  async get(nameOrSource: string, inputSize?: number): Promise<Backbone> {
    const { resolution = { backboneDir: '', scaling: {} }, check, ...options } = this.options;
    const { source, scaling, outputs } = resolveBackbone(nameOrSource, resolution);
    const declared = { ...(scaling ? { scaling } : {}), ...(outputs ? { outputs } : {}) };
    const load = async (sized: { inputSize?: number }) => {
      if (check) await checkBackboneInChildProcess(source, { ...declared, ...sized }, { ...check, cacheDir: options.cacheDir, ...(options.onDownload ? { onDownload: options.onDownload } : {}) });
      return loadBackbone(source, { ...options, ...declared, ...sized });
    };
    if (inputSize === undefined) return this.once(nameOrSource, () => load({}));
    // Loaded at its own size already (the zero-shot fallback, an earlier model): that one serves. Otherwise the
    // backbone is loaded at the size asked for only: loading its own size first to compare cost a fresh training
    // of a 288 px preset a whole extra graph build and backbone check per backbone.
    const own = await this.loaded.get(nameOrSource)?.catch(() => undefined);
    if (own?.inputSize === inputSize) return own;
    const sized = await this.once(`${nameOrSource}@${inputSize}px`, () => load({ inputSize }));
    // The size asked for was the backbone's own (its id names no other side): a later request without a size (the
    // zero-shot fallback) gets this one instead of a second copy.
    if (!sized.id.split('-').includes(`${inputSize}px`) && !this.loaded.has(nameOrSource)) this.loaded.set(nameOrSource, Promise.resolve(sized));
    return sized;
  }

  /** An ensemble: the backbones of `sources` as one, their features side by side in order (one source: itself). */
  combined(sources: readonly string[], inputSize?: number): Promise<Backbone> {
    if (sources.length === 1) return this.get(sources[0]!, inputSize);
    return this.once(JSON.stringify([sources, inputSize]), async () => combineBackbones(await Promise.all(sources.map((source) => this.get(source, inputSize)))));
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
