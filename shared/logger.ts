import { pino, stdSerializers, type DestinationStream, type Logger } from 'pino';

/**
 * Structured logs (pino, JSON on stderr so that snapctl's stdout stays clean for
 * --json). Secrets never reach a log line:
 *
 * - values under these keys, at any depth up to REDACT_DEPTH (pino's redact paths with
 *   wildcards), are replaced by `[redacted]`;
 * - in every logged string — messages, fields, errors' messages and stacks, nested errors
 *   and causes — Discord interaction and webhook tokens in URLs, `Bot …`/`Bearer …`
 *   credentials and Redis URL passwords are replaced (`scrubSecrets`).
 */
export const REDACTED_KEYS = ['token', 'password', 'authorization', 'Authorization', 'DISCORD_TOKEN', 'REDIS_URL', 'REDIS_PASSWORD', 'REDIS_SENTINEL_PASSWORD', 'REDIS_CLUSTER_PASSWORD', 'REDISCLI_AUTH', 'requirepass'] as const;
/** How deep below the top of a log object redacted keys are found (`a.b.c.d.e.f.token`). */
export const REDACT_DEPTH = 6;

const redactPaths = REDACTED_KEYS.flatMap((key) => Array.from({ length: REDACT_DEPTH + 1 }, (_, depth) => `${'*.'.repeat(depth)}${key}`));

const SECRET_PATTERNS: ReadonlyArray<[RegExp, string]> = [
  // Discord webhook and interaction-webhook URLs carry the interaction token: /webhooks/<app id>/<token>/…
  [/(\/webhooks\/\d+\/)[^/?#\s"'<>]+/g, '$1[redacted]'],
  // The interaction callback: /interactions/<id>/<token>/callback
  [/(\/interactions\/\d+\/)[^/?#\s"'<>]+/g, '$1[redacted]'],
  // redis://user:pass@host, rediss://:pass@host, redis-sentinel://… and redis-cluster://… (to the last '@' before the host: a password may hold one)
  [/(\b(?:rediss?|unix|redis-sentinel|redis-cluster):\/\/[^\s:/@"'<>]*:)[^\s/"'<>]*@/g, '$1***@'],
  // ?password=…, &pass=… in a URL's query (ioredis and redis-cli accept it there too)
  [/([?&][A-Za-z_]*pass(?:word)?=)[^&#\s"'<>]+/gi, '$1***'],
  // An Authorization header's value written out: "Bot MTA4…", "Bearer eyJ…"
  [/\b(Bot|Bearer) [A-Za-z0-9._~+/-]{20,}=*/g, '$1 [redacted]'],
];

/** The text with tokens in Discord URLs, Authorization values and Redis passwords replaced. */
export function scrubSecrets(text: string): string {
  let result = text;
  for (const [pattern, replacement] of SECRET_PATTERNS) result = result.replace(pattern, replacement);
  return result;
}

const MAX_SCRUB_DEPTH = 10;

/**
 * A copy of a logged value with every string scrubbed and every Error (at any depth,
 * causes included) serialized by pino's error serializer first. Cycles and very deep
 * values are cut, not followed.
 */
export function scrubValue(value: unknown, depth = 0, seen: WeakSet<object> = new WeakSet()): unknown {
  if (typeof value === 'string') return scrubSecrets(value);
  if (typeof value !== 'object' || value === null) return value;
  if (seen.has(value)) return '[circular]';
  if (depth >= MAX_SCRUB_DEPTH) return '[too deep]';
  seen.add(value);
  try {
    if (value instanceof Error) return scrubValue({ ...stdSerializers.err(value) }, depth, seen);
    if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1, seen));
    if (ArrayBuffer.isView(value) || value instanceof Map || value instanceof Set) return value;
    // What JSON.stringify would write for it (Dates, discord.js structures…), scrubbed.
    const toJSON = (value as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return scrubValue(toJSON.call(value), depth + 1, seen);
    const copy: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) copy[key] = scrubValue(item, depth + 1, seen);
    return copy;
  } finally {
    seen.delete(value);
  }
}

function errSerializer(value: unknown): unknown {
  return value instanceof Error ? scrubValue(value) : value;
}

export function createLogger(
  name: string,
  // `||`: an empty LOG_LEVEL means unset, as for every other variable.
  level: string = process.env.LOG_LEVEL || 'info',
  destination: DestinationStream = pino.destination({ dest: 2, sync: true }),
): Logger {
  return pino(
    {
      name,
      level,
      redact: { paths: redactPaths, censor: '[redacted]' },
      // Errors logged under `err` (or passed alone) go through the scrubbing serializer.
      serializers: { err: errSerializer, error: errSerializer },
      formatters: {
        log: (object) => scrubValue(object) as Record<string, unknown>,
        bindings: (bindings) => scrubValue(bindings) as Record<string, unknown>,
      },
      hooks: {
        logMethod(args, method) {
          const [first, ...rest] = args as unknown[];
          // logger.error(err) takes its message from the error: give pino the scrubbed one.
          if (first instanceof Error && rest.length === 0) {
            return method.apply(this, [first, scrubSecrets(first.message)] as Parameters<typeof method>);
          }
          const scrubbed = args.map((arg) => (typeof arg === 'string' ? scrubSecrets(arg) : arg));
          return method.apply(this, scrubbed as Parameters<typeof method>);
        },
      },
    },
    destination,
  );
}

export type { Logger };
