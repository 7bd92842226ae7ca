/**
 * How the worker's Node process is started, here and in package.json's `worker` script
 * and deploy/snapbot-worker.service (a test keeps the three equal). Both keep a
 * long-running worker near its idle size (docs/BENCHMARKS.md, section 3):
 *
 * - `--max-semi-space-size=1`: a 1 MiB young generation. With V8's default (semi-spaces
 *   grown up to 16 MiB under load and not given back) the worker stayed ~26 MiB bigger
 *   after a few hundred jobs.
 * - `MALLOC_ARENA_MAX=2`: glibc keeps at most two malloc arenas instead of one per thread
 *   that ever allocated (libuv's pool, child-process plumbing); after 2,000 jobs and 30 s
 *   idle the worker was +3.6 MiB over idle with it, +8.5 MiB without.
 */
export const WORKER_NODE_FLAGS = ['--max-semi-space-size=1'] as const;

/** Environment the worker needs before Node starts (glibc reads it at its first malloc). */
export const WORKER_ENVIRONMENT = { MALLOC_ARENA_MAX: '2' } as const;
