import type { ConnectionOptions, RedisOptions as BullmqRedisOptions } from 'bullmq';
import { Cluster, Redis, type ClusterOptions, type RedisOptions } from 'ioredis';
import { SnapbotError } from './errors.js';
import { scrubSecrets, type Logger } from './logger.js';

/**
 * A connection to snapbot's Redis: one server (REDIS_URL, or the master a Sentinel group
 * names) or a Redis Cluster (REDIS_CLUSTER_NODES). Both take the same commands; every
 * key shares one hash tag (the prefix), so multi-key commands and scripts stay in one slot.
 */
export type RedisClient = Redis | Cluster;

/**
 * The form `redisUrlOf` gives a Redis Cluster (REDIS_CLUSTER_NODES):
 * `redis-cluster://[user:password@]host:port,host:port`. Any node that answers will do:
 * the client learns the others and the slot map from it.
 */
export const CLUSTER_URL_PREFIX = 'redis-cluster://';
const CLUSTER_URL = /^redis-cluster:\/\/(?:([^@/]*)@)?([^/?#@]+)$/;

/** Whether `url` names a Redis Cluster (the `redis-cluster://` form). */
export function isClusterUrl(url: string): boolean {
  return url.startsWith(CLUSTER_URL_PREFIX);
}

/** `user:password` of a URL's authority, percent-decoded. */
function credentialsOf(auth: string | undefined): { username?: string; password?: string } {
  if (!auth) return {};
  const colon = auth.indexOf(':');
  const username = decodeURIComponent(colon >= 0 ? auth.slice(0, colon) : auth);
  const password = colon >= 0 ? decodeURIComponent(auth.slice(colon + 1)) : '';
  return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
}

/** host:port,host:port as ioredis addresses (the last colon splits, for IPv6). */
function addressesOf(list: string): Array<{ host: string; port: number }> {
  return list.split(',').map((entry) => {
    const at = entry.lastIndexOf(':');
    return { host: entry.slice(0, at), port: Number.parseInt(entry.slice(at + 1), 10) };
  });
}

function clusterAddress(url: string): { nodes: Array<{ host: string; port: number }>; username?: string; password?: string } {
  const match = CLUSTER_URL.exec(url);
  if (!match) throw new SnapbotError('VALIDATION', 'REDIS_CLUSTER_NODES: not a node list (host:port,host:port).');
  return { nodes: addressesOf(match[2]!), ...credentialsOf(match[1]) };
}

/**
 * The form `redisUrlOf` gives a Sentinel deployment (REDIS_SENTINELS, REDIS_SENTINEL_NAME):
 * `redis-sentinel://[user:password@]host:port,host:port/<master name>[?db=N&tls=1&sentinelPassword=…]`.
 * Every process passes Redis around as one string, so a Sentinel group travels the same way.
 */
export const SENTINEL_URL_PREFIX = 'redis-sentinel://';
const SENTINEL_URL = /^redis-sentinel:\/\/(?:([^@/]*)@)?([^/?#@]+)\/([^/?#]+)(?:\?([^#]*))?$/;

function sentinelOptions(url: string): RedisOptions {
  const match = SENTINEL_URL.exec(url);
  if (!match) throw new SnapbotError('VALIDATION', 'REDIS_SENTINELS: not a Sentinel address list (host:port,host:port).');
  const [, auth, hostList, name, query] = match;
  const params = new URLSearchParams(query ?? '');
  const { username, password } = credentialsOf(auth);
  const sentinels = addressesOf(hostList!);
  const db = Number.parseInt(params.get('db') ?? '0', 10);
  const sentinelPassword = params.get('sentinelPassword');
  const tls = params.get('tls') === '1';
  return {
    sentinels,
    name: decodeURIComponent(name!),
    ...(username ? { username } : {}),
    ...(password ? { password } : {}),
    ...(sentinelPassword ? { sentinelPassword } : {}),
    db: Number.isNaN(db) ? 0 : db,
    ...(tls ? { tls: {}, enableTLSForSentinelMode: true } : {}),
    // Learn of a failover from the Sentinels at once, not at the next failed write.
    failoverDetector: true,
    // A write that reaches the old master after a failover (now a replica) is refused
    // READONLY: reconnect through the Sentinels to the new master and send it again.
    reconnectOnError: (error: Error) => (error.message.startsWith('READONLY') ? 2 : false),
  };
}

/**
 * ioredis options from a `redis://`, `rediss://` or `unix://` URL, or the Sentinel form
 * above; for the Cluster form, the options of each node (its credentials):
 * `createRedisClient` adds the nodes.
 */
export function redisOptionsFromUrl(url: string): RedisOptions {
  if (url.startsWith(SENTINEL_URL_PREFIX)) return sentinelOptions(url);
  if (isClusterUrl(url)) {
    const { username, password } = clusterAddress(url);
    return { ...(username ? { username } : {}), ...(password ? { password } : {}) };
  }
  const parsed = new URL(url);
  if (parsed.protocol === 'unix:') return { path: decodeURIComponent(parsed.pathname) };
  const db = parsed.pathname.length > 1 ? Number.parseInt(parsed.pathname.slice(1), 10) : 0;
  return {
    // URL keeps an IPv6 host in brackets ([::1]); ioredis wants the bare address.
    host: parsed.hostname.replace(/^\[(.*)\]$/, '$1') || '127.0.0.1',
    port: parsed.port ? Number.parseInt(parsed.port, 10) : 6379,
    ...(parsed.username ? { username: decodeURIComponent(parsed.username) } : {}),
    ...(parsed.password ? { password: decodeURIComponent(parsed.password) } : {}),
    db: Number.isNaN(db) ? 0 : db,
    ...(parsed.protocol === 'rediss:' ? { tls: {} } : {}),
  };
}

/**
 * A failure of the connection rather than of the command: Redis restarting, a failover
 * under way (the old master answering READONLY, or LOADING while a node loads its data;
 * a cluster down, or without a reachable node, while its slots move), the offline queue
 * refusing while ioredis reconnects. Long-running loops wait these out.
 */
export function isRedisConnectionError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /Stream isn't writeable|Connection is closed|max retries per request|ECONNREFUSED|ECONNRESET|EPIPE|ETIMEDOUT|^READONLY|^LOADING|^MASTERDOWN|^CLUSTERDOWN|^TRYAGAIN|All sentinels are unreachable|None of startup nodes is available|Cluster isn't ready|Failed to refresh slots cache|Too many Cluster redirections/.test(
    message,
  );
}

/** Shows a Redis URL in messages without its password (`redis://:pw@`, `redis://user:pw@`, `?password=pw`). */
export function redactRedisUrl(url: string): string {
  if (url.startsWith(SENTINEL_URL_PREFIX)) {
    return url.replace(/^(redis-sentinel:\/\/[^:@/]*:)[^@/]*@/, '$1***@').replace(/([?&]sentinelPassword=)[^&#]*/, '$1***');
  }
  if (isClusterUrl(url)) return url.replace(/^(redis-cluster:\/\/[^:@/]*:)[^@/]*@/, '$1***@');
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = '***';
    for (const key of [...parsed.searchParams.keys()]) {
      if (/pass/i.test(key)) parsed.searchParams.set(key, '***');
    }
    return parsed.toString();
  } catch {
    return '(unparseable REDIS_URL)';
  }
}

/** Redis refused the credentials: NOAUTH (none given, one required) or WRONGPASS (wrong user or password). */
export function isRedisAuthError(error: unknown): boolean {
  const message = error instanceof Error ? error.message : String(error);
  return /\b(NOAUTH|WRONGPASS)\b|ERR invalid password/.test(message);
}

/** The sentence for a refused password, naming where the password comes from; never the password. */
export function redisAuthMessage(url: string, error: unknown): string {
  const reply = error instanceof Error ? error.message : String(error);
  if (isClusterUrl(url)) {
    const given = clusterAddress(url).password ? '' : ' (none was given)';
    return `Redis Cluster at ${redactRedisUrl(url)} refused the password${given} (REDIS_CLUSTER_PASSWORD): ${scrubSecrets(reply)}`;
  }
  let given = '';
  try {
    if (!new URL(url).password) given = ' (none was given)';
  } catch {
    // redactRedisUrl says the URL is unparseable.
  }
  return `Redis at ${redactRedisUrl(url)} refused the password${given} (REDIS_URL / data/redis.password): ${scrubSecrets(reply)}`;
}

/** The longest wait between two reconnect attempts of a long-running process. */
export const RECONNECT_CAP_MS = 2_000;

/**
 * ioredis `retryStrategy` for long-running processes: 100 ms, doubling up to
 * RECONNECT_CAP_MS, ±20 % jitter (so a fleet of workers does not reconnect in step),
 * and never giving up: a Redis that comes back after an hour is still found.
 */
export function reconnectDelay(times: number): number {
  const base = Math.min(100 * 2 ** Math.min(Math.max(times, 1) - 1, 10), RECONNECT_CAP_MS);
  return Math.round(base * (0.8 + Math.random() * 0.4));
}

/**
 * snapctl: one command, then exit. A few quick reconnects, then it gives up, and
 * commands fail at once instead of queueing while disconnected (REDIS_UNAVAILABLE).
 */
export function failFastRedisOptions(url: string): RedisOptions {
  return {
    ...redisOptionsFromUrl(url),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    retryStrategy: (times) => (times > 3 ? null : 200 * times),
    // A short-lived client (snapctl) needs no failover watch: its subscriptions to the
    // Sentinels would keep the process alive after it is done.
    ...(url.startsWith(SENTINEL_URL_PREFIX) ? { failoverDetector: false } : {}),
  };
}

/**
 * The bot's control connection (reads and enqueues): it reconnects forever with capped
 * backoff, but while disconnected every call fails at once (offline queue off) so a
 * command gets REDIS_UNAVAILABLE instead of hanging or piling up behind an outage.
 */
export function reconnectingRedisOptions(url: string): RedisOptions {
  return {
    ...redisOptionsFromUrl(url),
    enableOfflineQueue: false,
    maxRetriesPerRequest: 1,
    connectTimeout: 3_000,
    retryStrategy: reconnectDelay,
  };
}

/**
 * Workers: reconnect forever with capped backoff; BullMQ requires maxRetriesPerRequest
 * null. The offline queue stays on here, as BullMQ wants for workers: a job that
 * finishes while Redis is down reports its result once Redis is back (with the queue
 * off, BullMQ drops the completion and the job runs again after its lock lapses). What
 * could pile up is bounded by the worker's concurrency; the heartbeat skips its beats
 * while disconnected instead of queueing them.
 */
export function durableRedisOptions(url: string): RedisOptions {
  return {
    ...redisOptionsFromUrl(url),
    maxRetriesPerRequest: null,
    retryStrategy: reconnectDelay,
  };
}

/**
 * Logs a connection's outages once each: when it is lost, and when it is back with how
 * long it was down (ioredis emits an error per failed attempt; those go to debug).
 */
export function logConnectionChanges(redis: RedisClient, logger: Logger, what: string): void {
  let downSince: number | null = null;
  let refusedReported = false;
  const onError = (error: Error) => {
    // A Redis back with another password (or none) refuses every attempt: say so once, loudly.
    if (isRedisAuthError(error) && !refusedReported) {
      refusedReported = true;
      const source = redis instanceof Cluster ? 'REDIS_CLUSTER_PASSWORD' : 'REDIS_URL / data/redis.password';
      logger.error({ what, err: scrubSecrets(error.message) }, `Redis refused the password (${source}); retrying`);
      return;
    }
    logger.debug({ err: scrubSecrets(error.message), what }, 'redis connection error');
  };
  redis.on('error', onError);
  // A Cluster reports its nodes' errors apart.
  if (redis instanceof Cluster) redis.on('node error', onError);
  redis.on('close', () => {
    if (downSince !== null) return;
    downSince = Date.now();
    logger.warn({ what }, 'redis connection lost; reconnecting');
  });
  redis.on('ready', () => {
    refusedReported = false;
    if (downSince === null) return;
    logger.info({ what, downMs: Date.now() - downSince }, 'redis reconnected');
    downSince = null;
  });
}

/**
 * A client for `url` with `options` (written for one server): a `Redis`, or for the
 * Cluster form an ioredis `Cluster` that behaves the same way. Its reconnects follow
 * `retryStrategy`, its offline queue is the one given, and every node connection gets the
 * credentials, timeouts and retries per request. Reads go to masters (a replica may lag).
 */
export function createRedisClient(url: string, options: RedisOptions): RedisClient {
  if (!isClusterUrl(url)) return new Redis(options);
  const { nodes } = clusterAddress(url);
  const node: Record<string, unknown> = { ...options };
  // Cluster-wide settings, or set by the Cluster for each node (its address).
  for (const key of ['host', 'port', 'path', 'sentinels', 'name', 'retryStrategy', 'enableOfflineQueue', 'readOnly', 'lazyConnect', 'failoverDetector', 'reconnectOnError']) delete node[key];
  const { retryStrategy } = options;
  const clusterOptions: ClusterOptions = {
    redisOptions: node as ClusterOptions['redisOptions'],
    ...(retryStrategy ? { clusterRetryStrategy: (times: number) => retryStrategy(times) } : {}),
    ...(options.enableOfflineQueue !== undefined ? { enableOfflineQueue: options.enableOfflineQueue } : {}),
    ...(options.lazyConnect ? { lazyConnect: true } : {}),
    // A master that dies is replaced by its replica only after cluster-node-timeout (15 s by
    // default): until then a command is redirected to it and cannot reach it. Keep trying
    // for about 20 s (ioredis's default gives up after 16 tries 0.1 s apart), then the
    // caller's own retry takes over (a job's attempts, the watcher's loop).
    retryDelayOnFailover: 250,
    retryDelayOnClusterDown: 250,
    maxRedirections: 80,
  };
  return new Cluster(nodes, clusterOptions);
}

/**
 * Another connection like `client` (the same server or cluster and options), with
 * `override` for its connections: a BullMQ worker wants `maxRetriesPerRequest: null`.
 */
export function duplicateRedisClient(client: RedisClient, override: Partial<RedisOptions>): RedisClient {
  if (client instanceof Cluster) return client.duplicate(undefined, { redisOptions: { ...client.options.redisOptions, ...override } });
  return client.duplicate(override);
}

/**
 * Connects and pings once, so that an unreachable Redis is reported as REDIS_UNAVAILABLE
 * naming the URL, instead of as a hang or a raw ECONNREFUSED later.
 */
export async function connectRedis(url: string, options: RedisOptions): Promise<RedisClient> {
  const redis = createRedisClient(url, { ...options, lazyConnect: true });
  // ioredis reports a refused AUTH (or a NOAUTH ready check) as an 'error' event and then
  // rejects connect() with a bare "Connection is closed.": keep the event's reason.
  // Other errors are reported through the failing command below, or by the owner's own listener.
  let refused: Error | undefined;
  const noteRefusal = (error: Error) => {
    if (isRedisAuthError(error)) refused ??= error;
  };
  redis.on('error', noteRefusal);
  // A Cluster reports each node's errors apart, and then only that no node was available.
  if (redis instanceof Cluster) redis.on('node error', noteRefusal);
  try {
    await redis.connect();
    await redis.ping();
    return redis;
  } catch (error) {
    redis.disconnect();
    const authError = refused ?? (isRedisAuthError(error) ? error : undefined);
    if (authError) throw new SnapbotError('REDIS_UNAVAILABLE', redisAuthMessage(url, authError), { cause: authError });
    throw new SnapbotError(
      'REDIS_UNAVAILABLE',
      `Cannot reach Redis at ${redactRedisUrl(url)} (${
        isClusterUrl(url) ? 'REDIS_CLUSTER_NODES' : 'set REDIS_URL, or run `npm start` for a managed local Redis'
      }): ${
        error instanceof Error ? scrubSecrets(error.message) : scrubSecrets(String(error))
      }`,
      { cause: error },
    );
  }
}

/**
 * connectRedis for a long-running process (a worker, the control process): started
 * before its Redis is up (a host booting, `npm start`'s managed Redis being restarted),
 * it waits for it, saying so at every attempt with connectRedis's sentence, instead of
 * exiting. A refused password is a configuration error that waiting cannot fix: it
 * fails at once, as before.
 */
export async function connectRedisWaiting(url: string, options: RedisOptions, logger: Logger, what: string): Promise<RedisClient> {
  for (let attempt = 1; ; attempt++) {
    try {
      const redis = await connectRedis(url, options);
      if (attempt > 1) logger.info({ attempts: attempt }, `${what}: Redis is reachable now`);
      return redis;
    } catch (error) {
      if (!(error instanceof SnapbotError) || isRedisAuthError(error.cause)) throw error;
      const retryInMs = reconnectDelay(attempt);
      logger.warn({ attempt, retryInMs, code: error.code, err: error.message }, `${what}: Redis is not reachable yet; waiting for it`);
      await new Promise((resolve) => setTimeout(resolve, retryInMs));
    }
  }
}

/**
 * BullMQ connection options for a dedicated connection (QueueEvents blocks on XREAD,
 * so it may not share a client). BullMQ types its options on their own; the values are
 * the same ioredis options. Reconnects with `reconnectDelay` unless told otherwise
 * (BullMQ's own default waits up to 20 s between attempts).
 */
export function bullmqConnectionOptions(options: RedisOptions): BullmqRedisOptions {
  return Object.assign<BullmqRedisOptions, RedisOptions>({}, { retryStrategy: reconnectDelay, ...options, maxRetriesPerRequest: null });
}

/**
 * BullMQ's connection for a class that needs one of its own (QueueEvents blocks on XREAD):
 * options for one server; for a Cluster, a Cluster not yet connected, which BullMQ
 * duplicates for itself and closes with the class (this one never connects).
 */
export function bullmqConnection(url: string): ConnectionOptions {
  if (!isClusterUrl(url)) return bullmqConnectionOptions(redisOptionsFromUrl(url));
  return createRedisClient(url, { ...redisOptionsFromUrl(url), retryStrategy: reconnectDelay, maxRetriesPerRequest: null, lazyConnect: true });
}
