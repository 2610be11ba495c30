/**
 * A small Redis client (RESP2 over TCP) shaped like ioredis, so BullMQ can use it through its ioredis adapter.
 * BullMQ 6 made its Redis driver an optional peer dependency and none is installed in this project; this
 * file covers exactly what BullMQ and the queue adapter use: commands, Lua scripts, pipelines and MULTI,
 * blocking commands on their own connection, an offline queue and reconnection.
 * It imports nothing from the project so a test can transpile it on its own for a child process.
 */
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import net from 'node:net';

export type RedisArgument = string | number | Buffer | Uint8Array | null | undefined;
type Reply = string | number | null | Error | Reply[];

export interface RedisClientSettings {
  connectionName?: string;
  /** Reconnect after a lost connection (ioredis does); off for one-shot probes. */
  reconnect?: boolean;
  connectTimeoutMs?: number;
}

export class RedisReplyError extends Error {
  override name = 'ReplyError';
}

const CONNECTION_CLOSED = 'Connection is closed.';

/** The commands BullMQ calls as methods (`client.hgetall(...)`); the adapter itself uses `call`. */
const COMMANDS = [
  'bzpopmin', 'client', 'del', 'eval', 'evalsha', 'exists', 'expire', 'flushall', 'get', 'hdel', 'hexists',
  'hget', 'hgetall', 'hincrby', 'hlen', 'hmget', 'hscan', 'hset', 'incr', 'incrby', 'info', 'keys', 'llen',
  'lpop', 'lpos', 'lpush', 'lrange', 'lrem', 'ltrim', 'mget', 'pexpire', 'ping', 'pttl', 'rpop', 'rpush',
  'sadd', 'scan', 'scard', 'script', 'set', 'sismember', 'smembers', 'srem', 'sscan', 'ttl', 'type', 'xadd',
  'xlen', 'xrange', 'xread', 'xrevrange', 'xtrim', 'zadd', 'zcard', 'zcount', 'zrange', 'zrangebyscore',
  'zrem', 'zremrangebyrank', 'zrevrange', 'zrevrangebyscore', 'zscore',
] as const;

interface Script {
  numberOfKeys: number;
  lua: string;
  sha: string;
}

interface PendingReply {
  resolve(reply: Reply): void;
  reject(error: Error): void;
}

/** ioredis answers HGETALL with an object; BullMQ relies on that. */
function shapeReply(command: string, reply: Reply): unknown {
  if (command.toLowerCase() === 'hgetall' && Array.isArray(reply)) {
    const object: Record<string, string> = {};
    for (let index = 0; index + 1 < reply.length; index += 2) object[String(reply[index])] = String(reply[index + 1]);
    return object;
  }
  return reply;
}

function flattenArguments(args: unknown[]): RedisArgument[] {
  return args.flatMap((arg) => (Array.isArray(arg) ? (arg as RedisArgument[]) : [arg as RedisArgument]));
}

function encodeCommand(args: RedisArgument[]): Buffer {
  const parts: Buffer[] = [Buffer.from(`*${args.length}\r\n`)];
  for (const arg of args) {
    const bytes =
      arg instanceof Uint8Array ? Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength) : Buffer.from(arg == null ? '' : String(arg));
    parts.push(Buffer.from(`$${bytes.length}\r\n`), bytes, Buffer.from('\r\n'));
  }
  return Buffer.concat(parts);
}

/** Parses one reply starting at `offset`; undefined when the buffer does not hold all of it yet. */
function parseReply(buffer: Buffer, offset: number): { reply: Reply; next: number } | undefined {
  const lineEnd = buffer.indexOf('\r\n', offset);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buffer[offset] ?? 0);
  const line = buffer.toString('utf8', offset + 1, lineEnd);
  const afterLine = lineEnd + 2;
  switch (type) {
    case '+':
      return { reply: line, next: afterLine };
    case '-':
      return { reply: new RedisReplyError(line), next: afterLine };
    case ':':
      return { reply: Number(line), next: afterLine };
    case '$': {
      const length = Number(line);
      if (length === -1) return { reply: null, next: afterLine };
      if (buffer.length < afterLine + length + 2) return undefined;
      return { reply: buffer.toString('utf8', afterLine, afterLine + length), next: afterLine + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count === -1) return { reply: null, next: afterLine };
      const items: Reply[] = [];
      let next = afterLine;
      for (let index = 0; index < count; index += 1) {
        const item = parseReply(buffer, next);
        if (item === undefined) return undefined;
        items.push(item.reply);
        next = item.next;
      }
      return { reply: items, next };
    }
    default:
      throw new Error(`unexpected Redis reply type ${JSON.stringify(type)}`);
  }
}

export class MinimalRedisClient extends EventEmitter {
  /** The ioredis vocabulary that BullMQ reads: wait → connecting → ready → reconnecting / end. */
  status = 'wait';
  private socket: net.Socket | undefined;
  private received: Buffer = Buffer.alloc(0);
  private readonly pending: PendingReply[] = [];
  private readonly offline: { payload: Buffer; reply: PendingReply }[] = [];
  private readonly scripts = new Map<string, Script>();
  private connecting: Promise<void> | undefined;
  private closedByUs = false;
  private reconnectAttempts = 0;
  private readonly url: URL;

  constructor(
    readonly redisUrl: string,
    private readonly settings: RedisClientSettings = {},
  ) {
    super();
    this.url = new URL(redisUrl);
  }

  /** What BullMQ inspects: `maxRetriesPerRequest: null` lets commands wait through a reconnect. */
  get options(): Record<string, unknown> {
    return {
      host: this.url.hostname,
      port: Number(this.url.port || 6379),
      db: this.database(),
      maxRetriesPerRequest: null,
      connectionName: this.settings.connectionName,
    };
  }

  duplicate(override: RedisClientSettings = {}): MinimalRedisClient {
    return new MinimalRedisClient(this.redisUrl, { ...this.settings, ...override });
  }

  connect(): Promise<void> {
    if (this.status === 'ready') return Promise.resolve();
    if (this.status === 'end') return Promise.reject(new Error(CONNECTION_CLOSED));
    this.connecting ??= this.openSocket().finally(() => {
      this.connecting = undefined;
    });
    return this.connecting;
  }

  call(command: string, ...args: unknown[]): Promise<unknown> {
    return this.request([command, ...flattenArguments(args)]).then((reply) => {
      if (reply instanceof Error) throw reply;
      return shapeReply(command, reply);
    });
  }

  defineCommand(name: string, definition: { numberOfKeys: number; lua: string }): void {
    const script = { ...definition, sha: createHash('sha1').update(definition.lua).digest('hex') };
    this.scripts.set(name, script);
    Object.defineProperty(this, name, {
      configurable: true,
      value: (...args: unknown[]) => this.runScript(script, flattenArguments(args)),
    });
  }

  pipeline(): RedisBatch {
    return new RedisBatch(this, this.scripts, false);
  }

  multi(): RedisBatch {
    return new RedisBatch(this, this.scripts, true);
  }

  /** Sends several commands at once and collects their replies in order. */
  sendBatch(commands: RedisArgument[][]): Promise<Reply[]> {
    return Promise.all(commands.map((command) => this.request(command)));
  }

  /** Resolves with the raw reply, a Redis error reply included; commands wait offline until connected. */
  private request(command: RedisArgument[]): Promise<Reply> {
    const payload = encodeCommand(command);
    return new Promise<Reply>((resolve, reject) => {
      const reply = { resolve, reject };
      if (this.status === 'ready') this.writeCommand(payload, reply);
      else if (this.status === 'end') reject(new Error(CONNECTION_CLOSED));
      else {
        this.offline.push({ payload, reply });
        if (this.status === 'wait') this.connect().catch(() => {});
      }
    });
  }

  async quit(): Promise<string> {
    this.closedByUs = true;
    if (this.status === 'ready') {
      await this.call('quit').catch(() => 'OK');
    }
    this.disconnect();
    return 'OK';
  }

  disconnect(reconnect = false): void {
    this.closedByUs = !reconnect;
    if (this.socket === undefined) {
      if (!reconnect) this.end();
      return;
    }
    this.socket.destroy();
  }

  private async runScript(script: Script, args: RedisArgument[]): Promise<unknown> {
    try {
      return await this.call('evalsha', script.sha, script.numberOfKeys, ...args);
    } catch (error) {
      if (!(error instanceof RedisReplyError) || !error.message.startsWith('NOSCRIPT')) throw error;
      return this.call('eval', script.lua, script.numberOfKeys, ...args);
    }
  }

  private database(): number {
    return Number(this.url.pathname.slice(1) || 0);
  }

  private writeCommand(payload: Buffer, reply: PendingReply): void {
    this.pending.push(reply);
    this.socket?.write(payload);
  }

  private async openSocket(): Promise<void> {
    this.status = 'connecting';
    const socket = net.createConnection({ host: this.url.hostname, port: Number(this.url.port || 6379) });
    socket.setNoDelay(true);
    this.socket = socket;
    this.received = Buffer.alloc(0);
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error) => {
      if (this.listenerCount('error') > 0) this.emit('error', error);
    });
    socket.on('close', () => this.onClose(socket));
    const timer = setTimeout(
      () => socket.destroy(new Error(`connect to ${this.url.host} timed out`)),
      this.settings.connectTimeoutMs ?? 10_000,
    );
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('close', () => reject(new Error(`connect ECONNREFUSED ${this.url.host}`)));
        socket.once('error', reject);
      });
    } finally {
      clearTimeout(timer);
    }
    this.status = 'connect';
    const handshake: Promise<Reply>[] = [];
    const ask = (...command: RedisArgument[]) =>
      handshake.push(new Promise<Reply>((resolve, reject) => this.writeCommand(encodeCommand(command), { resolve, reject })));
    if (this.url.password !== '') {
      const password = decodeURIComponent(this.url.password);
      if (this.url.username !== '') ask('auth', decodeURIComponent(this.url.username), password);
      else ask('auth', password);
    }
    if (this.database() !== 0) ask('select', this.database());
    if (this.settings.connectionName !== undefined) ask('client', 'setname', this.settings.connectionName);
    for (const reply of await Promise.all(handshake)) if (reply instanceof Error) throw reply;
    this.status = 'ready';
    this.reconnectAttempts = 0;
    this.emit('connect');
    this.emit('ready');
    for (const { payload, reply } of this.offline.splice(0)) this.writeCommand(payload, reply);
  }

  private onData(chunk: Buffer): void {
    this.received = this.received.length === 0 ? chunk : Buffer.concat([this.received, chunk]);
    let offset = 0;
    for (;;) {
      const parsed = parseReply(this.received, offset);
      if (parsed === undefined) break;
      offset = parsed.next;
      this.pending.shift()?.resolve(parsed.reply);
    }
    this.received = this.received.subarray(offset);
  }

  private onClose(socket: net.Socket): void {
    if (socket !== this.socket) return;
    this.socket = undefined;
    for (const reply of this.pending.splice(0)) reply.reject(new Error(CONNECTION_CLOSED));
    if (this.closedByUs || this.settings.reconnect === false) {
      this.end();
      return;
    }
    this.status = 'reconnecting';
    this.emit('close');
    this.reconnectAttempts += 1;
    setTimeout(() => {
      if (this.status === 'reconnecting') this.connect().catch(() => {});
    }, Math.min(100 * this.reconnectAttempts, 2000)).unref();
  }

  private end(): void {
    if (this.status === 'end') return;
    this.status = 'end';
    for (const { reply } of this.offline.splice(0)) reply.reject(new Error(CONNECTION_CLOSED));
    this.emit('close');
    this.emit('end');
  }
}

for (const command of COMMANDS) {
  Object.defineProperty(MinimalRedisClient.prototype, command, {
    value(this: MinimalRedisClient, ...args: unknown[]) {
      return this.call(command, ...args);
    },
  });
}

/** A pipeline or, with `atomic`, a MULTI/EXEC transaction; `exec` answers `[error, reply]` pairs like ioredis. */
export class RedisBatch {
  private readonly commands: RedisArgument[][] = [];

  constructor(
    private readonly client: MinimalRedisClient,
    scripts: Map<string, Script>,
    private readonly atomic: boolean,
  ) {
    // A queued script is sent as EVAL: its SHA may not be loaded and a batch cannot retry one command.
    for (const [name, script] of scripts) {
      Object.defineProperty(this, name, {
        value: (...args: unknown[]) => this.add('eval', script.lua, script.numberOfKeys, ...flattenArguments(args)),
      });
    }
  }

  add(...command: RedisArgument[]): this {
    this.commands.push(command);
    return this;
  }

  async exec(): Promise<[Error | null, unknown][] | null> {
    const names = this.commands.map((command) => String(command[0]));
    if (!this.atomic) {
      const replies = await this.client.sendBatch(this.commands);
      return replies.map((reply, index) => (reply instanceof Error ? [reply, null] : [null, shapeReply(names[index] ?? '', reply)]));
    }
    const replies = await this.client.sendBatch([['multi'], ...this.commands, ['exec']]);
    const results = replies.at(-1);
    if (results instanceof Error) throw results;
    if (!Array.isArray(results)) return null;
    return results.map((reply, index) => (reply instanceof Error ? [reply, null] : [null, shapeReply(names[index] ?? '', reply)]));
  }
}

for (const command of COMMANDS) {
  Object.defineProperty(RedisBatch.prototype, command, {
    value(this: RedisBatch, ...args: unknown[]) {
      return this.add(command, ...flattenArguments(args));
    },
  });
}
