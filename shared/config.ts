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

const positiveInt = (fallback: number) => z.coerce.number().int().positive().default(fallback);

export const commonEnvSchema = z.object({
  REDIS_URL: z
    .string()
    .regex(/^(rediss?|unix):\/\//, 'expected redis://host:port, rediss://… or unix:///path/to/socket')
    .optional(),
  SNAPBOT_PREFIX: z.string().min(1).default(DEFAULT_PREFIX),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** Where the managed Redis and the keys live (default ./data). */
  SNAPBOT_DATA_DIR: z.string().min(1).default('data'),
});

export const workerEnvSchema = commonEnvSchema.extend({
  HOST_ID: hostIdSchema.default(() => hostname().split('.')[0] || 'localhost'),
  LIBVIRT_URI: z.string().min(1).default('qemu:///system'),
  VIRSH_PATH: z.string().min(1).default('virsh'),
  WORKER_CONCURRENCY: positiveInt(4),
  /** A create, revert or delete virsh call is killed after this long (memory snapshots of big VMs take a while). */
  VIRSH_TIMEOUT_MS: positiveInt(300_000),
  /** Quick virsh calls (list, info, version) get this shorter limit. */
  VIRSH_QUERY_TIMEOUT_MS: positiveInt(30_000),
  HEARTBEAT_INTERVAL_MS: positiveInt(5_000),
  /** A host counts as offline this long after its last heartbeat. */
  HEARTBEAT_TTL_MS: positiveInt(15_000),
  INVENTORY_INTERVAL_MS: positiveInt(DEFAULT_INVENTORY_INTERVAL_MS),
  /** How long a stopping worker lets running virsh calls finish. */
  SHUTDOWN_GRACE_MS: positiveInt(60_000),
  /** BullMQ job lock; a job whose worker died is taken up again after this (tests shorten it). */
  JOB_LOCK_MS: positiveInt(30_000),
  JOB_STALLED_CHECK_MS: positiveInt(30_000),
  /**
   * The control process's public key (PEM, or a path to it): this worker runs a create,
   * revert or delete only when that key signed it. Default: SNAPBOT_DATA_DIR/authority.key.pub.
   */
  SNAPBOT_AUTHORITY_KEY: z.string().min(1).optional(),
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
  BOT_JOB_TIMEOUT_MS: positiveInt(30 * 60_000),
  /** The control process's Ed25519 private key (PEM file); default SNAPBOT_DATA_DIR/authority.key, made on first start. */
  SNAPBOT_SIGNING_KEY: z.string().min(1).optional(),
  /** Serve Discord too (then DISCORD_APP_ID and DISCORD_GUILD_ID are required). */
  DISCORD_TOKEN: z.string().min(1).optional(),
});
export type ControlConfig = z.infer<typeof controlEnvSchema>;
export type ClientConfig = z.infer<typeof clientEnvSchema>;

const snowflake = (name: string) => z.string().regex(/^\d{15,21}$/, `${name} must be a Discord id (digits)`);

export const botEnvSchema = controlEnvSchema.extend({
  DISCORD_TOKEN: z.string({ error: 'DISCORD_TOKEN is required: the bot token from the Discord developer portal' }).min(1),
  DISCORD_APP_ID: snowflake('DISCORD_APP_ID'),
  /** The one server snapbot serves: commands are registered there; interactions from any other server or a DM are refused. */
  DISCORD_GUILD_ID: z
    .string({ error: 'DISCORD_GUILD_ID is required: snapbot serves one guild and ignores every other' })
    .min(1, { error: 'DISCORD_GUILD_ID is required: snapbot serves one guild and ignores every other', abort: true })
    .regex(/^\d{15,21}$/, 'DISCORD_GUILD_ID must be a Discord id (digits)'),
  /** Where results that outlive the 15-minute interaction token are posted. */
  DISCORD_CHANNEL_ID: snowflake('DISCORD_CHANNEL_ID').optional(),
  /** REST base override (tests, proxies), passed to discord.js `rest.api`. */
  DISCORD_API_URL: z.url().optional(),
});

/** Reads `.env` from the working directory into process.env (existing variables win). */
export function loadDotEnv(path = '.env'): void {
  if (existsSync(path)) process.loadEnvFile(path);
}

/** Parses the environment with `schema`, turning zod issues into one readable VALIDATION error. */
export function parseEnv<S extends z.ZodType>(schema: S, env: NodeJS.ProcessEnv = process.env): z.infer<S> {
  // An empty value means unset: compose files and env files write `X=` for "not given".
  const parsed = schema.safeParse(Object.fromEntries(Object.entries(env).filter(([, value]) => value !== '')));
  if (parsed.success) return parsed.data;
  const problems = parsed.error.issues.map((issue) => `${issue.path.join('.') || 'environment'}: ${issue.message}`);
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
export function redisUrlOf(config: { REDIS_URL?: string | undefined; SNAPBOT_DATA_DIR?: string | undefined }): string {
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
