import { existsSync, readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { z } from 'zod';
import { SnapbotError } from './errors.js';
import { DEFAULT_INVENTORY_INTERVAL_MS } from './hosts.js';
import { hostIdSchema } from './names.js';
import { DEFAULT_PREFIX } from './queues.js';

/**
 * Configuration comes from the environment (and `.env` in the working directory, if
 * present). It is validated once at start; every error names the variable.
 */

/** Where `npm start` runs its managed redis-server, and where everything looks when REDIS_URL is unset. */
export const MANAGED_REDIS_URL = 'redis://127.0.0.1:6380';

/** The longest delay Node's timers keep: a longer setTimeout fires after 1 ms instead. */
const MAX_TIMER_MS = 2_147_483_647;

/** Shows a refused value in a message: quoted, escaped, cut short (never used for secrets). */
function shown(value: string): string {
  return JSON.stringify(value.length > 32 ? `${value.slice(0, 32)}…` : value);
}

interface WholeNumberRule {
  fallback: number;
  min: number;
  max: number;
  /** `ms` for durations; '' for counts. */
  unit: 'ms' | '';
  /** Why the minimum is what it is, said when a value is below it. */
  whyMin?: string;
}

/**
 * A whole number from the environment: digits only (no `1e3`, `0x10`, `1.5`, `10s` or
 * blanks, which z.coerce.number would read as numbers), between `min` and `max`.
 */
function wholeNumber(rule: WholeNumberRule) {
  const unit = rule.unit ? ` ${rule.unit}` : '';
  const what = rule.unit === 'ms' ? 'a whole number of milliseconds' : 'a whole number';
  return z
    .string()
    .transform((raw, ctx) => {
      const text = raw.trim();
      if (!/^\d+$/.test(text)) {
        ctx.addIssue({ code: 'custom', message: `expected ${what} such as ${rule.fallback}, got ${shown(raw)}` });
        return z.NEVER;
      }
      const value = Number(text);
      if (value < rule.min) {
        ctx.addIssue({ code: 'custom', message: `must be at least ${rule.min}${unit}, got ${value}${rule.whyMin ? `: ${rule.whyMin}` : ''}` });
        return z.NEVER;
      }
      if (value > rule.max) {
        const why = rule.unit === 'ms' && rule.max === MAX_TIMER_MS ? " (about 24.8 days, the longest delay Node's timers keep)" : '';
        ctx.addIssue({ code: 'custom', message: `must be at most ${rule.max}${unit}${why}, got ${text}` });
        return z.NEVER;
      }
      return value;
    })
    .default(rule.fallback);
}

const milliseconds = (fallback: number, min: number, whyMin?: string) => wholeNumber({ fallback, min, max: MAX_TIMER_MS, unit: 'ms', whyMin });

const REDIS_URL_FORMS = 'redis://[user:password@]host[:port][/db], rediss://… (TLS) or unix:///path/to/socket';
const NO_HOST =
  'REDIS_URL has no host: write redis://host[:port] (the port is 6379 when left out, as for redis-cli), ' +
  'or leave REDIS_URL unset to use the managed Redis of `npm start` on 127.0.0.1:6380';

/**
 * What is wrong with a REDIS_URL, in a sentence naming it; undefined when it is usable.
 * It mirrors what shared/redis.ts reads from the URL (host, port, user, password, db; the
 * socket path of unix://), so nothing given is silently ignored. The value itself is
 * never repeated: it may hold a password.
 */
export function redisUrlProblem(value: string): string | undefined {
  if (!/^(rediss?|unix):\/\//i.test(value)) return `REDIS_URL must start with redis://, rediss:// or unix:// (${REDIS_URL_FORMS})`;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    // Host and port: what follows the last '@', so that a password is never looked at.
    const hostPort = /^[a-z]+:\/\/(?:.*@)?([^@/?#]*)/i.exec(value)?.[1] ?? '';
    const [, host = '', port] = /^(\[[^\]]*\]|[^:]*)(?::(.*))?$/.exec(hostPort) ?? [];
    if (port !== undefined && /^\d+$/.test(port) && Number(port) > 65535) return `REDIS_URL's port ${Number(port)} is out of range: ports go from 1 to 65535`;
    if (port !== undefined && !/^\d*$/.test(port)) return "REDIS_URL's port is not a number from 1 to 65535";
    if (!host && !value.toLowerCase().startsWith('unix:')) return NO_HOST;
    return `REDIS_URL is not a valid URL (${REDIS_URL_FORMS}); in a user name or password, write @ : / ? # % as %40 %3A %2F %3F %23 %25`;
  }
  if (url.search || url.hash) {
    return "REDIS_URL has a ? or # part, which is not read: give the user and password before the host (redis://user:password@host:port), and write ? # / @ inside them as %3F %23 %2F %40";
  }
  if (url.protocol === 'unix:') {
    if (url.hostname) return 'REDIS_URL: a unix socket needs an absolute path after three slashes (unix:///run/redis/redis.sock)';
    if (!url.pathname || url.pathname === '/') return 'REDIS_URL has no socket path: write unix:///path/to/redis.sock';
    return undefined;
  }
  if (!url.hostname) return NO_HOST;
  if (url.port === '0') return "REDIS_URL's port 0 is out of range: ports go from 1 to 65535";
  if (url.pathname && url.pathname !== '/' && !/^\/\d+$/.test(url.pathname)) {
    return "REDIS_URL's path must be a database number (redis://host:port/0), or nothing";
  }
  return undefined;
}

export const commonEnvSchema = z.object({
  /** Unset: the managed Redis of `npm start` (MANAGED_REDIS_URL). A URL without a port means 6379. */
  REDIS_URL: z
    .string()
    .superRefine((value, ctx) => {
      const problem = redisUrlProblem(value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem });
    })
    .optional(),
  /**
   * Redis behind Sentinel: the Sentinels as host:port,host:port, and the name of the
   * master they watch. REDIS_URL then gives only the data nodes' user, password, database
   * and TLS (its host is not used).
   */
  REDIS_SENTINELS: z
    .string()
    .regex(/^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/, 'expected the Sentinels as host:port,host:port (no spaces)')
    .optional(),
  REDIS_SENTINEL_NAME: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected the master name the Sentinels monitor (letters, digits, . _ -)').optional(),
  /** The Sentinels' own password (`requirepass` in sentinel.conf), when they have one. */
  REDIS_SENTINEL_PASSWORD: z.string().min(1).optional(),
  /**
   * A Redis Cluster: some of its nodes as host:port,host:port (the client learns the rest),
   * instead of REDIS_URL or the Sentinels. SNAPBOT_PREFIX must then hold a hash tag.
   */
  REDIS_CLUSTER_NODES: z
    .string()
    .regex(/^[A-Za-z0-9.-]+:\d{1,5}(,[A-Za-z0-9.-]+:\d{1,5})*$/, 'expected cluster nodes as host:port,host:port (no spaces)')
    .optional(),
  /** The cluster nodes' password (`requirepass`), and their ACL user when it is not `default`. */
  REDIS_CLUSTER_PASSWORD: z.string().min(1).optional(),
  REDIS_CLUSTER_USERNAME: z.string().regex(/^[^\s:@]+$/, 'expected an ACL user name (no blanks, : or @)').optional(),
  SNAPBOT_PREFIX: z.string().min(1).default(DEFAULT_PREFIX),
  LOG_LEVEL: z
    .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], { error: 'expected one of fatal, error, warn, info, debug, trace, silent' })
    .default('info'),
  /** Where the managed Redis and the keys live (default ./data). */
  SNAPBOT_DATA_DIR: z.string().min(1).default('data'),
});

/** The worker's variables, each checked alone; workerEnvSchema adds the checks between them. */
const workerEnvFields = commonEnvSchema.extend({
  HOST_ID: hostIdSchema.default(() => hostname().split('.')[0] || 'localhost'),
  LIBVIRT_URI: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9+.-]*:\/\/\S*$/, 'expected a libvirt URI such as qemu:///system or qemu+ssh://root@host/system')
    .default('qemu:///system'),
  VIRSH_PATH: z.string().min(1).default('virsh'),
  WORKER_CONCURRENCY: wholeNumber({ fallback: 4, min: 1, max: 1000, unit: '' }),
  /** A create, revert or delete virsh call is killed after this long (memory snapshots of big VMs take a while). */
  VIRSH_TIMEOUT_MS: milliseconds(300_000, 1_000, 'starting virsh and connecting to libvirt alone takes a good part of a second'),
  /**
   * `on`: a long-running `virsh event` tells the worker when a VM name may have moved, so
   * jobs skip the name check's own virsh process while none did (worker/domain-watch.ts).
   * `off`: every job checks the name with `virsh domname` first.
   */
  LIBVIRT_EVENTS: z.enum(['on', 'off'], { error: 'expected on or off' }).default('on'),
  /** Quick virsh calls (list, info, version) get this shorter limit. */
  VIRSH_QUERY_TIMEOUT_MS: milliseconds(30_000, 1_000, 'starting virsh and connecting to libvirt alone takes a good part of a second'),
  HEARTBEAT_INTERVAL_MS: milliseconds(5_000, 100, 'every heartbeat is a write to Redis'),
  /** A host counts as offline this long after its last heartbeat. */
  HEARTBEAT_TTL_MS: milliseconds(15_000, 200),
  INVENTORY_INTERVAL_MS: milliseconds(DEFAULT_INVENTORY_INTERVAL_MS, 1_000, 'every inventory runs virsh for each VM'),
  /** How long a stopping worker lets running virsh calls finish. */
  SHUTDOWN_GRACE_MS: milliseconds(60_000, 1),
  /**
   * BullMQ job lock (lockDuration). BullMQ renews it every JOB_LOCK_MS / 2 while the job
   * runs; a lock that expires (the worker died, or could not reach Redis for half of it)
   * lets the next stall check put the job back in the queue.
   */
  JOB_LOCK_MS: milliseconds(
    30_000,
    2_000,
    'BullMQ renews the lock of a running job every JOB_LOCK_MS / 2, and a job whose renewal does not reach Redis before the lock expires is taken as stalled and run again by another worker',
  ),
  /** How often BullMQ looks for jobs whose lock expired (stalledInterval); each look is a script over the active jobs. */
  JOB_STALLED_CHECK_MS: milliseconds(30_000, 500, 'each stall check runs a script over every active job in Redis'),
  /**
   * The control process's public key (PEM, or a path to it): this worker runs a create,
   * revert or delete only when that key signed it. Default: SNAPBOT_DATA_DIR/authority.key.pub.
   */
  SNAPBOT_AUTHORITY_KEY: z.string().min(1).optional(),
});

/**
 * The worker (`npm run worker`). Between JOB_LOCK_MS and JOB_STALLED_CHECK_MS no order is
 * required: a stall check takes only a job whose lock has already expired, and the lock
 * of a live job is renewed every JOB_LOCK_MS / 2 whatever the check's interval, so a
 * check more or less often changes only how soon a dead worker's job is taken up again.
 */
export const workerEnvSchema = workerEnvFields.superRefine((config, ctx) => {
  // The heartbeat is re-armed after each write, so beats come a little later than the
  // interval: a TTL of one interval (or barely more) would flap the host offline.
  if (config.HEARTBEAT_TTL_MS < 2 * config.HEARTBEAT_INTERVAL_MS) {
    ctx.addIssue({
      code: 'custom',
      path: ['HEARTBEAT_TTL_MS'],
      message:
        `HEARTBEAT_TTL_MS (${config.HEARTBEAT_TTL_MS} ms) must be at least twice HEARTBEAT_INTERVAL_MS (${config.HEARTBEAT_INTERVAL_MS} ms): ` +
        'a host counts as offline once its last heartbeat is older than the TTL, so one late heartbeat would mark a live host offline',
    });
  }
});
export type WorkerConfig = z.infer<typeof workerEnvSchema>;

/**
 * snapctl. It reads Redis directly and sends every change to the control process, which
 * applies its own policy: snapctl has no SNAPBOT_POLICY of its own (a user could point it
 * at any file). Its key: SNAPCTL_KEY, or made on first use (see bot/cli/operator-key.ts).
 */
export const clientEnvSchema = commonEnvSchema.extend({
  /** snapctl's Ed25519 private key (PEM file). */
  SNAPCTL_KEY: z.string().min(1).optional(),
});

/** The control process (`npm run bot`): policy, approvals and signing; Discord too when DISCORD_TOKEN is set. */
export const controlEnvSchema = commonEnvSchema.extend({
  SNAPBOT_POLICY: z.string().min(1).optional(),
  /** How long a chat command or a snapctl request waits for its job. */
  BOT_JOB_TIMEOUT_MS: milliseconds(30 * 60_000, 1_000),
  /** The control process's Ed25519 private key (PEM file); default SNAPBOT_DATA_DIR/authority.key, made on first start. */
  SNAPBOT_SIGNING_KEY: z.string().min(1).optional(),
  /** Serve Discord too (then DISCORD_APP_ID and DISCORD_GUILD_ID are required). */
  DISCORD_TOKEN: z.string().min(1).optional(),
});
export type ControlConfig = z.infer<typeof controlEnvSchema>;
export type ClientConfig = z.infer<typeof clientEnvSchema>;

/** A Discord id (snowflake); `required` says, when it is missing, what it is and where to find it. */
function snowflake(name: string, required?: string) {
  const shape = `${name} must be a Discord id: 15 to 21 digits (Developer Mode, then right-click → Copy ID)`;
  return z
    .string({ error: (issue) => (issue.input === undefined && required ? `${name} is required: ${required}` : shape) })
    .regex(/^\d{15,21}$/, shape);
}

export const botEnvSchema = controlEnvSchema.extend({
  DISCORD_TOKEN: z.string({ error: 'DISCORD_TOKEN is required: the bot token from the Discord developer portal (Bot → Reset Token)' }).min(1),
  DISCORD_APP_ID: snowflake('DISCORD_APP_ID', 'the application id from the Discord developer portal (General Information → Application ID), 15 to 21 digits'),
  /** The one server snapbot serves: commands are registered there; interactions from any other server or a DM are refused. */
  DISCORD_GUILD_ID: snowflake('DISCORD_GUILD_ID', 'snapbot serves one guild and ignores every other (its id: 15 to 21 digits)'),
  /** Where results that outlive the 15-minute interaction token are posted. */
  DISCORD_CHANNEL_ID: snowflake('DISCORD_CHANNEL_ID').optional(),
  /** REST base override (tests, proxies), passed to discord.js `rest.api`. */
  DISCORD_API_URL: z.url({ protocol: /^https?$/, error: 'expected an http(s) URL, the REST base such as https://discord.com/api' }).optional(),
});

/** Reads `.env` from the working directory into process.env (existing variables win). */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/**
 * Parses the environment with `schema`, turning zod issues into one VALIDATION error
 * that names each variable (a message that starts with its variable is kept as it is).
 */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // An empty (or blank) value means unset: compose files and env files write `X=` for "not given".
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== undefined && value.trim() !== '')));
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => {
    const name = issue.path.join('.') || 'environment';
    return issue.message.startsWith(name) ? issue.message : `${name}: ${issue.message}`;
  });
  throw new SnapbotError('VALIDATION', `Invalid configuration: ${problems.join('; ')}`);
}

/**
 * The managed Redis's password, made by `npm start` on its first start (0600):
 * `redis.password` in the data directory (SNAPBOT_DATA_DIR, default `data`).
 */
export function managedRedisPasswordFile(dataDir?: string): string {
  return resolve(dataDir || process.env.SNAPBOT_DATA_DIR || 'data', 'redis.password');
}

/**
 * REDIS_URL; when it is unset, the managed Redis of `npm start` in this folder, with the
 * password from its file. Without a readable file, the URL carries no password, and a
 * Redis that wants one answers NOAUTH (reported as "refused the password").
 */
export function redisUrlOf(config: {
  REDIS_URL?: string | undefined;
  SNAPBOT_DATA_DIR?: string | undefined;
  REDIS_SENTINELS?: string | undefined;
  REDIS_SENTINEL_NAME?: string | undefined;
  REDIS_SENTINEL_PASSWORD?: string | undefined;
  REDIS_CLUSTER_NODES?: string | undefined;
  REDIS_CLUSTER_PASSWORD?: string | undefined;
  REDIS_CLUSTER_USERNAME?: string | undefined;
  SNAPBOT_PREFIX?: string | undefined;
}): string {
  if (config.REDIS_CLUSTER_NODES || config.REDIS_CLUSTER_PASSWORD || config.REDIS_CLUSTER_USERNAME) return clusterUrlOf(config);
  if (config.REDIS_SENTINELS || config.REDIS_SENTINEL_NAME) return sentinelUrlOf(config);
  if (config.REDIS_URL) return config.REDIS_URL;
  let password = '';
  try {
    password = readFileSync(managedRedisPasswordFile(config.SNAPBOT_DATA_DIR), 'utf8').trim();
  } catch {
    // No managed Redis has run here (or its file is not ours to read): no password.
  }
  if (!password) return MANAGED_REDIS_URL;
  const url = new URL(MANAGED_REDIS_URL);
  url.password = password;
  return url.toString();
}

/** The Sentinel form of shared/redis.ts (`redis-sentinel://…`), from REDIS_SENTINELS, REDIS_SENTINEL_NAME and REDIS_URL's credentials. */
function sentinelUrlOf(config: { REDIS_URL?: string | undefined; REDIS_SENTINELS?: string | undefined; REDIS_SENTINEL_NAME?: string | undefined; REDIS_SENTINEL_PASSWORD?: string | undefined }): string {
  if (!config.REDIS_SENTINELS) throw new SnapbotError('VALIDATION', 'REDIS_SENTINEL_NAME is set but REDIS_SENTINELS is not: give the Sentinels as host:port,host:port.');
  if (!config.REDIS_SENTINEL_NAME) throw new SnapbotError('VALIDATION', 'REDIS_SENTINELS is set but REDIS_SENTINEL_NAME is not: give the name of the master the Sentinels monitor (sentinel monitor <name> …).');
  let auth = '';
  const params = new URLSearchParams();
  if (config.REDIS_URL) {
    const data = new URL(config.REDIS_URL);
    if (data.username || data.password) auth = `${data.username}${data.password ? `:${data.password}` : ''}@`;
    const db = data.pathname.length > 1 ? data.pathname.slice(1) : '';
    if (db) params.set('db', db);
    if (data.protocol === 'rediss:') params.set('tls', '1');
  }
  if (config.REDIS_SENTINEL_PASSWORD) params.set('sentinelPassword', config.REDIS_SENTINEL_PASSWORD);
  const query = params.toString();
  return `redis-sentinel://${auth}${config.REDIS_SENTINELS}/${encodeURIComponent(config.REDIS_SENTINEL_NAME)}${query ? `?${query}` : ''}`;
}

/**
 * Whether `prefix` holds a Redis Cluster hash tag: text between the first `{` and the
 * first `}` after it, not empty. Every key then hashes to one slot, as BullMQ's scripts
 * and snapbot's own (several keys each) need on a cluster.
 */
export function hasHashTag(prefix: string): boolean {
  return /^[^{]*\{[^}]+\}/.test(prefix);
}

/** The Cluster form of shared/redis.ts (`redis-cluster://…`), from REDIS_CLUSTER_NODES and its credentials. */
function clusterUrlOf(config: {
  REDIS_URL?: string | undefined;
  REDIS_SENTINELS?: string | undefined;
  REDIS_SENTINEL_NAME?: string | undefined;
  REDIS_CLUSTER_NODES?: string | undefined;
  REDIS_CLUSTER_PASSWORD?: string | undefined;
  REDIS_CLUSTER_USERNAME?: string | undefined;
  SNAPBOT_PREFIX?: string | undefined;
}): string {
  if (!config.REDIS_CLUSTER_NODES) {
    const given = config.REDIS_CLUSTER_PASSWORD ? 'REDIS_CLUSTER_PASSWORD' : 'REDIS_CLUSTER_USERNAME';
    throw new SnapbotError('VALIDATION', `${given} is set but REDIS_CLUSTER_NODES is not: give the cluster's nodes as host:port,host:port, or unset ${given}.`);
  }
  if (config.REDIS_SENTINELS || config.REDIS_SENTINEL_NAME) {
    throw new SnapbotError('VALIDATION', 'REDIS_CLUSTER_NODES and REDIS_SENTINELS / REDIS_SENTINEL_NAME both say where Redis is: give a Cluster or a Sentinel group, not both.');
  }
  if (config.REDIS_URL) {
    throw new SnapbotError('VALIDATION', "REDIS_CLUSTER_NODES and REDIS_URL both say where Redis is: unset REDIS_URL (the cluster's password goes in REDIS_CLUSTER_PASSWORD).");
  }
  const prefix = config.SNAPBOT_PREFIX ?? DEFAULT_PREFIX;
  if (!hasHashTag(prefix)) {
    throw new SnapbotError(
      'VALIDATION',
      `SNAPBOT_PREFIX must hold a hash tag such as {snapbot} on a Redis Cluster (REDIS_CLUSTER_NODES), got ${shown(prefix)}: every key must hash to one slot for BullMQ's scripts.`,
    );
  }
  const user = config.REDIS_CLUSTER_USERNAME ? encodeURIComponent(config.REDIS_CLUSTER_USERNAME) : '';
  const auth = config.REDIS_CLUSTER_PASSWORD ? `${user}:${encodeURIComponent(config.REDIS_CLUSTER_PASSWORD)}@` : user ? `${user}@` : '';
  return `redis-cluster://${auth}${config.REDIS_CLUSTER_NODES}`;
}
