import { isIP } from 'node:net';
import { z } from 'zod';
import { parseEnv } from './config.js';

/**
 * METRICS_PORT and METRICS_HOST: where the control process and each worker serve
 * `/metrics`, `/healthz` and `/readyz` (shared/metrics-server.ts). Off when METRICS_PORT
 * is unset or empty. Kept apart from config.ts so that both entry points read it the
 * same way, with the same parseEnv (empty means unset; errors name the variable).
 */

/** Loopback by default: metrics and health are for the local Prometheus or a reverse proxy, not the world. */
export const DEFAULT_METRICS_HOST = '127.0.0.1';

const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const metricsEnvSchema = z.object({
  METRICS_PORT: z
    .string()
    .regex(/^\s*\d+\s*$/, 'expected a TCP port from 1 to 65535 such as 9464 (leave it unset to serve no metrics)')
    .transform((text) => Number(text.trim()))
    .refine((port) => port >= 1 && port <= 65535, 'expected a TCP port from 1 to 65535 such as 9464 (leave it unset to serve no metrics)')
    .optional(),
  METRICS_HOST: z
    .string()
    // [::1] as in a URL is taken too.
    .transform((text) => text.trim().replace(/^\[(.*)\]$/, '$1'))
    .refine(
      (host) => isIP(host) !== 0 || HOSTNAME.test(host),
      'expected an address of this machine to listen on: 127.0.0.1 (the default), 0.0.0.0 or :: for every interface, or one interface\'s address',
    )
    .default(DEFAULT_METRICS_HOST),
});
export type MetricsConfig = z.infer<typeof metricsEnvSchema>;

/** Where to serve, or undefined when METRICS_PORT is unset (metrics off). */
export interface MetricsListen {
  host: string;
  port: number;
}

/** Reads METRICS_PORT and METRICS_HOST; VALIDATION naming the variable when one is wrong. */
export function readMetricsListen(env: NodeJS.ProcessEnv = process.env): MetricsListen | undefined {
  const config = parseEnv(metricsEnvSchema, env);
  return config.METRICS_PORT === undefined ? undefined : { host: config.METRICS_HOST, port: config.METRICS_PORT };
}
