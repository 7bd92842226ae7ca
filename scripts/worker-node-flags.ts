/**
 * V8 flags for the worker, here and in package.json's `worker` script and
 * deploy/snapbot-worker.service (a test keeps the three equal). A 1 MiB young generation
 * keeps a long-running worker at its idle size: with V8's default (up to 16 MiB semi-spaces,
 * grown under load and not given back) it stayed ~26 MiB bigger after a few hundred jobs
 * (docs/BENCHMARKS.md, section 3).
 */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=1'] as const;
