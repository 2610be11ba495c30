import type { MiddlewareHandler } from 'hono';
import { matchedRoutes } from 'hono/route';

/** Label names → values of one time series. */
type Labels = Record<string, string>;

interface Sample {
  labels: Labels;
  value: number;
}

interface Family {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  samples(): Sample[] | { suffix: string; labels: Labels; value: number }[] | Promise<Sample[]>;
}

const escapeLabelValue = (value: string): string => value.replaceAll('\\', '\\\\').replaceAll('\n', '\\n').replaceAll('"', '\\"');
const escapeHelp = (text: string): string => text.replaceAll('\\', '\\\\').replaceAll('\n', '\\n');

function formatLabels(labels: Labels): string {
  const pairs = Object.entries(labels).map(([name, value]) => `${name}="${escapeLabelValue(value)}"`);
  return pairs.length > 0 ? `{${pairs.join(',')}}` : '';
}

function formatValue(value: number): string {
  if (Number.isNaN(value)) return 'NaN';
  if (value === Infinity) return '+Inf';
  if (value === -Infinity) return '-Inf';
  return String(value);
}

const seriesKey = (labels: Labels): string => JSON.stringify(Object.entries(labels).sort(([a], [b]) => a.localeCompare(b)));

export class Counter {
  private readonly series = new Map<string, Sample>();

  inc(labels: Labels = {}, by = 1): void {
    const key = seriesKey(labels);
    const sample = this.series.get(key);
    if (sample) sample.value += by;
    else this.series.set(key, { labels, value: by });
  }

  samples(): Sample[] {
    return [...this.series.values()];
  }
}

export class Histogram {
  private readonly series = new Map<string, { labels: Labels; counts: number[]; sum: number; count: number }>();

  constructor(private readonly buckets: readonly number[]) {}

  observe(labels: Labels, value: number): void {
    const key = seriesKey(labels);
    let entry = this.series.get(key);
    if (!entry) {
      entry = { labels, counts: this.buckets.map(() => 0), sum: 0, count: 0 };
      this.series.set(key, entry);
    }
    this.buckets.forEach((bound, i) => {
      if (value <= bound) entry.counts[i]! += 1;
    });
    entry.sum += value;
    entry.count += 1;
  }

  samples(): { suffix: string; labels: Labels; value: number }[] {
    return [...this.series.values()].flatMap(({ labels, counts, sum, count }) => [
      ...this.buckets.map((bound, i) => ({ suffix: '_bucket', labels: { ...labels, le: formatValue(bound) }, value: counts[i]! })),
      { suffix: '_bucket', labels: { ...labels, le: '+Inf' }, value: count },
      { suffix: '_sum', labels, value: sum },
      { suffix: '_count', labels, value: count },
    ]);
  }
}

/** A tiny Prometheus registry: families render in registration order in the text exposition format 0.0.4. */
export class MetricsRegistry {
  private readonly families: Family[] = [];

  counter(name: string, help: string): Counter {
    const counter = new Counter();
    this.families.push({ name, help, type: 'counter', samples: () => counter.samples() });
    return counter;
  }

  histogram(name: string, help: string, buckets: readonly number[]): Histogram {
    const histogram = new Histogram(buckets);
    this.families.push({ name, help, type: 'histogram', samples: () => histogram.samples() });
    return histogram;
  }

  /** A gauge read when scraped, so it can never go stale. */
  gauge(name: string, help: string, collect: () => Sample[] | Promise<Sample[]>): void {
    this.families.push({ name, help, type: 'gauge', samples: collect });
  }

  async render(): Promise<string> {
    const lines: string[] = [];
    for (const family of this.families) {
      lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
      for (const sample of await family.samples()) {
        const suffix = 'suffix' in sample ? sample.suffix : '';
        lines.push(`${family.name}${suffix}${formatLabels(sample.labels)} ${formatValue(sample.value)}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

const DURATION_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export interface ServerMetrics {
  registry: MetricsRegistry;
  predictions: Counter;
  middleware: MiddlewareHandler;
}

/**
 * HTTP metrics labelled by the route pattern (`/api/v1/predictions/:id`), never the raw path, so ids cannot
 * explode the number of series; requests no route matched share `route="unmatched"`.
 */
export function createServerMetrics(): ServerMetrics {
  const registry = new MetricsRegistry();
  const requests = registry.counter('http_requests_total', 'HTTP requests answered, by method, route pattern and status.');
  const durations = registry.histogram('http_request_duration_seconds', 'Time to answer HTTP requests (until the response starts).', DURATION_BUCKETS);
  const predictions = registry.counter('catdog_predictions_total', 'Photos classified by this server, by predicted label.');
  const middleware: MiddlewareHandler = async (c, next) => {
    const started = performance.now();
    try {
      await next();
    } finally {
      const handler = matchedRoutes(c).findLast((route) => route.method !== 'ALL');
      const labels = { method: c.req.method, route: handler?.path ?? 'unmatched', status: String(c.res.status) };
      requests.inc(labels);
      durations.observe({ method: labels.method, route: labels.route }, (performance.now() - started) / 1000);
    }
  };
  return { registry, predictions, middleware };
}
