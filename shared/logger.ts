import { pino, type Logger } from 'pino';

/**
 * Structured logs (pino, JSON on stderr so that snapctl's stdout stays clean for
 * --json). Secrets are redacted wherever they appear under these keys.
 */
export function createLogger(name: string, level: string = process.env.LOG_LEVEL ?? 'info'): Logger {
  return pino(
    {
      name,
      level,
      redact: {
        paths: ['token', '*.token', 'password', '*.password', 'REDIS_URL', 'DISCORD_TOKEN', '*.DISCORD_TOKEN'],
        censor: '[redacted]',
      },
    },
    pino.destination({ dest: 2, sync: true }),
  );
}

export type { Logger };
