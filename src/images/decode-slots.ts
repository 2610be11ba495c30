/**
 * At most `concurrency` decodes at once, shared fairly between clients: a client holds at most half of the slots
 * (at least one), and when a slot frees it goes to the client that has waited longest for its turn, one decode
 * each in rotation. The decodes already run on libuv's thread pool; this keeps one client's many uploads from
 * taking every thread while another client's single photo waits behind all of them.
 */
export class DecodeSlots {
  readonly concurrency: number;
  private readonly perClient: number;
  private readonly running = new Map<string, number>();
  private runningTotal = 0;
  /** Waiting decodes by client, in turn order: a served client goes to the back. */
  private readonly waiting = new Map<string, (() => void)[]>();

  constructor(concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError(`concurrency must be a positive integer, got ${concurrency}`);
    this.concurrency = concurrency;
    this.perClient = Math.max(1, Math.floor(concurrency / 2));
  }

  async run<T>(client: string, work: () => Promise<T>): Promise<T> {
    await this.acquire(client);
    try {
      return await work();
    } finally {
      this.release(client);
    }
  }

  private acquire(client: string): Promise<void> {
    const queue = this.waiting.get(client);
    if (queue === undefined && this.mayStart(client)) {
      this.start(client);
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      if (queue) queue.push(resolve);
      else this.waiting.set(client, [resolve]);
    });
  }

  private mayStart(client: string): boolean {
    return this.runningTotal < this.concurrency && (this.running.get(client) ?? 0) < this.perClient;
  }

  private start(client: string): void {
    this.runningTotal++;
    this.running.set(client, (this.running.get(client) ?? 0) + 1);
  }

  private release(client: string): void {
    this.runningTotal--;
    const left = this.running.get(client)! - 1;
    if (left === 0) this.running.delete(client);
    else this.running.set(client, left);
    for (const [next, queue] of this.waiting) {
      if (!this.mayStart(next)) continue;
      const resolve = queue.shift()!;
      this.waiting.delete(next);
      if (queue.length > 0) this.waiting.set(next, queue);
      this.start(next);
      resolve();
      return;
    }
  }
}
