import { combineBackbones, loadBackbone, type Backbone, type LoadBackboneOptions } from './backbone.js';
import { resolveBackbone, type BackboneResolution } from './catalogue.js';

/**
 * Loads each backbone once per process: several models and the zero-shot fallback share it. Sources are catalogue
 * names, URLs or paths, as model cards and training parameters record them.
 */
export class BackboneProvider {
  private readonly loaded = new Map<string, Promise<Backbone>>();

  /** Without `resolution`, catalogue names resolve to their published URLs and every other source takes x/127.5−1. */
  constructor(private readonly options: LoadBackboneOptions & { resolution?: BackboneResolution }) {}

  /** The backbone fed `inputSize` px images (absent: its own size, which the zero-shot fallback also uses). */
  async get(nameOrSource: string, inputSize?: number): Promise<Backbone> {
    const { resolution = { backboneDir: '', scaling: {} }, ...options } = this.options;
    const { source, scaling } = resolveBackbone(nameOrSource, resolution);
    const declared = scaling ? { scaling } : {};
    const own = await this.once(nameOrSource, () => loadBackbone(source, { ...options, ...declared }));
    if (inputSize === undefined || inputSize === own.inputSize) return own;
    return this.once(`${nameOrSource}@${inputSize}px`, () => loadBackbone(source, { ...options, ...declared, inputSize }));
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
