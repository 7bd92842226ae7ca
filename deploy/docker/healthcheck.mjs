#!/usr/bin/env node
// The image's HEALTHCHECK. With METRICS_PORT set, snapbot serves /healthz (the process
// is alive) and /readyz (Redis reachable; for a worker libvirt too) on that port, at
// METRICS_HOST (default 127.0.0.1): this asks it there (on loopback when METRICS_HOST is
// 0.0.0.0 or ::) and exits 0 on a 2xx answer. HEALTHCHECK_PATH=/readyz makes
// "healthy" mean ready. Without METRICS_PORT there is nothing to ask: it says so and
// exits 0, so the status then means only that the process runs.
import { request } from 'node:http';

const port = process.env.METRICS_PORT?.trim();
if (!port) {
  console.log('METRICS_PORT is unset: no health endpoint to ask (the process runs)');
  process.exit(0);
}
const listen = process.env.METRICS_HOST?.trim() || '127.0.0.1';
const host = listen === '0.0.0.0' || listen === '::' ? '127.0.0.1' : listen.replace(/^\[(.*)\]$/, '$1');
const path = process.env.HEALTHCHECK_PATH?.trim() || '/healthz';
const timeoutMs = 4000;

const req = request({ host, port: Number(port), path, method: 'GET', timeout: timeoutMs }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (chunk) => {
    if (body.length < 500) body += chunk;
  });
  res.on('end', () => {
    const status = res.statusCode ?? 0;
    console.log(`GET ${path} on ${host} port ${port}: ${status} ${body.trim().slice(0, 200)}`);
    process.exit(status >= 200 && status < 300 ? 0 : 1);
  });
});
req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
req.on('error', (error) => {
  console.log(`GET ${path} on ${host} port ${port}: ${error.message}`);
  process.exit(1);
});
req.end();
