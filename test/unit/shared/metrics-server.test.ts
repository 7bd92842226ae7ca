import { createServer } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/logger.js';
import {
  cachedReadiness,
  cacheFor,
  registerProcessMetrics,
  runReadinessProbes,
  startMetricsServer,
  withTimeout,
  type MetricsServer,
} from '../../../shared/metrics-server.js';

const logger = createLogger('test', 'silent');
const servers: MetricsServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((server) => server.close()));
});

async function serve(readiness: () => Promise<string[]> = async () => []) {
  const registry = new Registry();
  new Counter({ name: 'snapbot_test_total', help: 'A test counter.', registers: [registry] }).inc(3);
  const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry, readiness, logger });
  servers.push(server);
  const url = (path: string) => `http://127.0.0.1:${server.address.port}${path}`;
  return { server, url };
}

describe('the metrics server', () => {
  it('serves the registry on /metrics in the Prometheus text format', async () => {
    const { url } = await serve();
    const response = await fetch(url('/metrics'));
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await response.text()).toContain('# HELP snapbot_test_total A test counter.\n# TYPE snapbot_test_total counter\nsnapbot_test_total 3\n');
  });

  it('says ok on /healthz, whatever readiness says', async () => {
    const { url } = await serve(async () => ['redis: not connected']);
    const response = await fetch(url('/healthz'));
    expect([response.status, await response.text()]).toEqual([200, 'ok\n']);
  });

  it('answers /readyz 200 when nothing is wrong, else 503 with one line per reason', async () => {
    let problems: string[] = [];
    const { url } = await serve(async () => problems);
    const ready = await fetch(url('/readyz'));
    expect([ready.status, await ready.text()]).toEqual([200, 'ready\n']);
    problems = ['redis: not connected (connection reconnecting)', 'libvirt: Cannot reach libvirt on host kvm-01'];
    const notReady = await fetch(url('/readyz?verbose'));
    expect(notReady.status).toBe(503);
    expect(notReady.headers.get('content-type')).toBe('text/plain; charset=utf-8');
    expect(await notReady.text()).toBe('not ready\nredis: not connected (connection reconnecting)\nlibvirt: Cannot reach libvirt on host kvm-01\n');
  });

  it('refuses other paths (404) and other methods (405)', async () => {
    const { url } = await serve();
    expect((await fetch(url('/'))).status).toBe(404);
    expect((await fetch(url('/metrics/extra'))).status).toBe(404);
    const post = await fetch(url('/metrics'), { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
    const head = await fetch(url('/healthz'), { method: 'HEAD' });
    expect(head.status).toBe(200);
  });

  it('answers 500 when a metric cannot be collected, and keeps serving', async () => {
    const registry = new Registry();
    new Counter({
      name: 'snapbot_broken_total',
      help: 'Broken.',
      registers: [registry],
      collect() {
        throw new Error('boom');
      },
    });
    const server = await startMetricsServer({ host: '127.0.0.1', port: 0, registry, readiness: async () => [], logger });
    servers.push(server);
    expect((await fetch(`http://127.0.0.1:${server.address.port}/metrics`)).status).toBe(500);
    expect((await fetch(`http://127.0.0.1:${server.address.port}/healthz`)).status).toBe(200);
  });

  it('refuses to start on a port in use, naming METRICS_PORT', async () => {
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as { port: number }).port;
    try {
      await expect(startMetricsServer({ host: '127.0.0.1', port, registry: new Registry(), readiness: async () => [], logger })).rejects.toMatchObject({
        code: 'VALIDATION',
        message: `Cannot serve metrics on METRICS_HOST=127.0.0.1 METRICS_PORT=${port}: the port is in use by another process (choose another METRICS_PORT)`,
      });
    } finally {
      taken.close();
    }
  });

  it('refuses an address that is not this machine, naming METRICS_HOST', async () => {
    await expect(startMetricsServer({ host: '192.0.2.1', port: 0, registry: new Registry(), readiness: async () => [], logger })).rejects.toThrow(
      /METRICS_HOST is not an address of this machine/,
    );
  });

  it('serves default process metrics that promtool accepts (no gauge named _total)', async () => {
    const registry = new Registry();
    registerProcessMetrics(registry);
    const names = (await registry.getMetricsAsJSON()).map((metric) => metric.name);
    expect(names).toContain('process_cpu_user_seconds_total');
    expect(names).toContain('nodejs_active_handles');
    expect(names.filter((name) => name.endsWith('_total') && !name.startsWith('process_cpu'))).toEqual([]);
  });
});

describe('readiness probes', () => {
  it('name each probe that failed or took too long, and nothing when all pass', async () => {
    const problems = await runReadinessProbes(
      [
        { name: 'redis', probe: async () => undefined },
        { name: 'libvirt', probe: async () => Promise.reject(new Error('Cannot reach libvirt\nerror: failed to connect')) },
        { name: 'slow', probe: () => new Promise(() => undefined) },
      ],
      50,
    );
    expect(problems).toEqual(['libvirt: Cannot reach libvirt; error: failed to connect', 'slow: no answer within 50 ms']);
    expect(await runReadinessProbes([{ name: 'redis', probe: async () => undefined }])).toEqual([]);
  });

  it('keep a cached outcome for its time, then ask again', async () => {
    let now = 0;
    let calls = 0;
    let healthy = true;
    const probe = cachedReadiness(
      {
        name: 'libvirt',
        async probe() {
          calls += 1;
          if (!healthy) throw new Error('down');
        },
      },
      5_000,
      () => now,
    );
    await probe.probe();
    healthy = false;
    now = 4_999;
    await probe.probe();
    expect(calls).toBe(1);
    now = 5_000;
    await expect(probe.probe()).rejects.toThrow('down');
    now = 9_000;
    await expect(probe.probe()).rejects.toThrow('down');
    expect(calls).toBe(2);
  });
});

describe('cacheFor', () => {
  it('shares one read among callers that come while it runs', async () => {
    let reads = 0;
    let release: (value: number) => void = () => undefined;
    const read = cacheFor(() => {
      reads += 1;
      return new Promise<number>((resolve) => (release = resolve));
    }, 1_000);
    const both = Promise.all([read(), read(), read()]);
    release(7);
    expect(await both).toEqual([7, 7, 7]);
    expect(reads).toBe(1);
  });

  it('withTimeout gives up on a read that takes too long', async () => {
    await expect(withTimeout(new Promise(() => undefined), 20, 'too slow')).rejects.toThrow('too slow');
    expect(await withTimeout(Promise.resolve(1), 20, 'too slow')).toBe(1);
  });
});
