import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { RedisClient } from './redis.js';
import { collectDefaultMetrics, type Registry } from 'prom-client';
import { SnapbotError } from './errors.js';
import type { Logger } from './logger.js';
import type { MetricsListen } from './metrics-config.js';

/**
 * The HTTP side of metrics and health, for the control process and every worker
 * (node:http, no framework):
 *
 * - `GET /metrics`: the process's prom-client registry, Prometheus text format.
 * - `GET /healthz`: 200 whenever the process answers at all (its event loop runs).
 * - `GET /readyz`: 200 when every readiness probe passes, else 503 with one line per
 *   failed probe, in plain text (what a person running curl needs to see).
 */

/** One thing the process needs to do its work; `probe` rejects with the reason when it cannot. */
export interface ReadinessProbe {
  name: string;
  probe(): Promise<void>;
}

export interface MetricsServerOptions extends MetricsListen {
  registry: Registry;
  /** Read afresh on each /readyz: the process may be starting or stopping, with nothing to probe yet. */
  readiness: () => Promise<string[]>;
  logger: Logger;
}

export interface MetricsServer {
  /** Where it listens (the port the kernel gave, when 0 was asked for). */
  readonly address: MetricsListen;
  close(): Promise<void>;
}

/**
 * prom-client's default process and Node.js metrics, less three gauges named `…_total`
 * (nodejs_active_handles_total, nodejs_active_requests_total,
 * nodejs_active_resources_total), which `promtool check metrics` refuses: `_total` is for
 * counters. Each is the sum over the per-type gauge of the same name without `_total`,
 * which stays (`sum(nodejs_active_handles)` gives it back).
 */
export function registerProcessMetrics(registry: Registry): void {
  collectDefaultMetrics({ register: registry });
  for (const name of ['nodejs_active_handles_total', 'nodejs_active_requests_total', 'nodejs_active_resources_total']) registry.removeSingleMetric(name);
}

/** How long one readiness probe may take before it counts as failed. */
export const READINESS_PROBE_TIMEOUT_MS = 3_000;

/** Resolves with `work`'s value, or rejects with `what` once `ms` have passed (the work itself goes on). */
export function withTimeout<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(what)), ms);
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Runs every probe at once; returns "name: reason" for each one that failed or took too long. */
export async function runReadinessProbes(probes: readonly ReadinessProbe[], timeoutMs = READINESS_PROBE_TIMEOUT_MS): Promise<string[]> {
  const results = await Promise.allSettled(
    probes.map((probe) => withTimeout(probe.probe(), timeoutMs, `no answer within ${formatMs(timeoutMs)}`)),
  );
  return results.flatMap((result, index) => (result.status === 'rejected' ? [`${probes[index]!.name}: ${reasonOf(result.reason)}`] : []));
}

/** How long Redis gets to answer PING. */
export const REDIS_PING_TIMEOUT_MS = 1_000;

/**
 * Redis answers PING within `timeoutMs`. A connection that is not `ready` fails at once:
 * a PING sent then would wait in ioredis's offline queue, and every probe would add one.
 */
export function redisReadiness(redis: RedisClient, timeoutMs = REDIS_PING_TIMEOUT_MS): ReadinessProbe {
  return {
    name: 'redis',
    async probe() {
      if (redis.status !== 'ready') throw new Error(`not connected (connection ${redis.status})`);
      await withTimeout(redis.ping(), timeoutMs, `no answer to PING within ${formatMs(timeoutMs)}`);
    },
  };
}

/**
 * `read`, with its outcome (value or error) kept for `ttlMs`; calls while it runs share
 * that one attempt. For what a scrape or a probe reads: Prometheus, a load balancer and
 * an operator's curl may all ask at once, and none of them should cost Redis or virsh a
 * call each.
 */
export function cacheFor<T>(read: () => Promise<T>, ttlMs: number, now: () => number = Date.now): () => Promise<T> {
  let last: { at: number; outcome: PromiseSettledResult<T> } | undefined;
  let running: Promise<{ at: number; outcome: PromiseSettledResult<T> }> | undefined;
  return async () => {
    if (last === undefined || now() - last.at >= ttlMs) {
      running ??= read()
        .then(
          (value): PromiseSettledResult<T> => ({ status: 'fulfilled', value }),
          (reason: unknown): PromiseSettledResult<T> => ({ status: 'rejected', reason }),
        )
        .then((outcome) => {
          last = { at: now(), outcome };
          running = undefined;
          return last;
        });
      last = await running;
    }
    if (last.outcome.status === 'rejected') throw last.outcome.reason;
    return last.outcome.value;
  };
}

/** A probe whose outcome is kept for `cacheMs` (see cacheFor): frequent probes must not start a virsh process each. */
export function cachedReadiness(probe: ReadinessProbe, cacheMs: number, now: () => number = Date.now): ReadinessProbe {
  return { name: probe.name, probe: cacheFor(() => probe.probe(), cacheMs, now) };
}

/** Binds METRICS_HOST:METRICS_PORT; VALIDATION naming them when it cannot. */
export async function startMetricsServer(options: MetricsServerOptions): Promise<MetricsServer> {
  const server = createServer((request, response) => {
    void answer(options, request, response).catch((error: unknown) => {
      options.logger.warn({ err: error, path: request.url }, 'metrics endpoint failed');
      if (!response.headersSent) send(response, 500, 'internal error\n');
      else response.destroy();
    });
  });
  // A scrape or probe is small and quick; a client that dawdles is cut off.
  server.headersTimeout = 5_000;
  server.requestTimeout = 10_000;
  await listen(server, options);
  const bound = server.address() as AddressInfo;
  const address = { host: bound.address, port: bound.port };
  options.logger.info({ metrics: `http://${bound.family === 'IPv6' ? `[${bound.address}]` : bound.address}:${bound.port}/metrics` }, 'serving metrics and health');
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

function listen(server: Server, { host, port }: MetricsListen): Promise<void> {
  return new Promise((resolve, reject) => {
    const failed = (error: NodeJS.ErrnoException) => {
      server.off('listening', listening);
      reject(new SnapbotError('VALIDATION', bindProblem(error, host, port), { cause: error }));
    };
    const listening = () => {
      server.off('error', failed);
      resolve();
    };
    server.once('error', failed);
    server.once('listening', listening);
    server.listen({ host, port });
  });
}

function bindProblem(error: NodeJS.ErrnoException, host: string, port: number): string {
  const where = `METRICS_HOST=${host} METRICS_PORT=${port}`;
  switch (error.code) {
    case 'EADDRINUSE':
      return `Cannot serve metrics on ${where}: the port is in use by another process (choose another METRICS_PORT)`;
    case 'EACCES':
      return `Cannot serve metrics on ${where}: not allowed (ports below 1024 need privileges; choose METRICS_PORT 1024 or above, 9464 say)`;
    case 'EADDRNOTAVAIL':
      return `Cannot serve metrics on ${where}: METRICS_HOST is not an address of this machine (use 127.0.0.1, 0.0.0.0, :: or one of its interfaces' addresses)`;
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
      return `Cannot serve metrics on ${where}: METRICS_HOST does not resolve to an address`;
    default:
      return `Cannot serve metrics on ${where}: ${error.message}`;
  }
}

async function answer(options: MetricsServerOptions, request: IncomingMessage, response: ServerResponse): Promise<void> {
  const path = new URL(request.url ?? '/', 'http://metrics').pathname;
  if (path !== '/metrics' && path !== '/healthz' && path !== '/readyz') return send(response, 404, 'not found: try /metrics, /healthz or /readyz\n');
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('Allow', 'GET, HEAD');
    return send(response, 405, 'method not allowed: use GET\n');
  }
  switch (path) {
    case '/healthz':
      return send(response, 200, 'ok\n');
    case '/readyz': {
      const problems = await options.readiness();
      return problems.length === 0 ? send(response, 200, 'ready\n') : send(response, 503, `not ready\n${problems.map((problem) => `${problem}\n`).join('')}`);
    }
    default:
      return send(response, 200, await options.registry.metrics(), options.registry.contentType);
  }
}

function send(response: ServerResponse, status: number, body: string, contentType = 'text/plain; charset=utf-8'): void {
  response.writeHead(status, { 'Content-Type': contentType, 'Content-Length': Buffer.byteLength(body), 'Cache-Control': 'no-store' });
  response.end(response.req.method === 'HEAD' ? undefined : body);
}

function reasonOf(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  // One line per probe: virsh's stderr may span several.
  return text.replace(/\s*\n\s*/g, '; ').trim() || 'failed';
}

function formatMs(ms: number): string {
  return ms % 1000 === 0 ? `${ms / 1000} s` : `${ms} ms`;
}
