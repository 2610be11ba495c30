import { combineBackbones, loadBackbone, type Backbone, type LoadBackboneOptions } from './backbone.js';

/** Loads each backbone once per process: several models and the zero-shot fallback share it. */
export class BackboneProvider {
  private readonly loaded = new Map<string, Promise<Backbone>>();

  constructor(private readonly options: LoadBackboneOptions) {}

  /** The backbone fed `inputSize` px images (absent: its own size, which the zero-shot fallback also uses). */
  async get(source: string, inputSize?: number): Promise<Backbone> {
    const own = await this.once(source, () => loadBackbone(source, this.options));
    if (inputSize === undefined || inputSize === own.inputSize) return own;
    return this.once(`${source}@${inputSize}px`, () => loadBackbone(source, { ...this.options, inputSize }));
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
