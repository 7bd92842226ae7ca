import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../shared/logger.js';
import { isFinalFailure, jobKindLabel, VIRSH_DURATION_BUCKETS, WorkerMetrics } from '../../../worker/metrics.js';

const logger = createLogger('test', 'silent');

describe('worker metrics', () => {
  it('label jobs by their kind, and anything else as other (a forged job name must not add series)', () => {
    for (const kind of ['create', 'list', 'info', 'revert', 'delete']) expect(jobKindLabel({ name: kind })).toBe(kind);
    expect(jobKindLabel({ name: 'vm-web-01-4711' })).toBe('other');
    expect(jobKindLabel({ name: 'toString' })).toBe('other');
    expect(jobKindLabel(undefined)).toBe('other');
  });

  it("count a failure as the job's result only when BullMQ will not retry it", () => {
    expect(isFinalFailure({ finishedOn: 1_700_000_000_000 })).toBe(true);
    expect(isFinalFailure({ finishedOn: undefined })).toBe(false);
    expect(isFinalFailure(undefined)).toBe(true);
  });

  it('time virsh calls from 10 ms to 10 min, and count failures by subcommand and class', async () => {
    expect(VIRSH_DURATION_BUCKETS[0]).toBe(0.01);
    expect(VIRSH_DURATION_BUCKETS.at(-1)).toBe(600);
    const metrics = new WorkerMetrics({ hostId: 'kvm-01', logger });
    metrics.observeVirsh({ subcommand: 'snapshot-create-as', durationMs: 3_200, failure: null });
    metrics.observeVirsh({ subcommand: 'snapshot-create-as', durationMs: 300_000, failure: 'TIMEOUT' });
    const text = await metrics.registry.metrics();
    expect(text).toContain('snapbot_virsh_call_duration_seconds_bucket{le="2.5",host="kvm-01",subcommand="snapshot-create-as"} 0\n');
    expect(text).toContain('snapbot_virsh_call_duration_seconds_bucket{le="5",host="kvm-01",subcommand="snapshot-create-as"} 1\n');
    expect(text).toContain('snapbot_virsh_call_duration_seconds_bucket{le="300",host="kvm-01",subcommand="snapshot-create-as"} 2\n');
    expect(text).toContain('snapbot_virsh_call_duration_seconds_sum{host="kvm-01",subcommand="snapshot-create-as"} 303.2\n');
    expect(text).toContain('snapbot_virsh_calls_failed_total{host="kvm-01",subcommand="snapshot-create-as",class="TIMEOUT"} 1\n');
  });

  it('are not ready while the worker starts, nor once it stops', async () => {
    const metrics = new WorkerMetrics({ hostId: 'kvm-01', logger });
    expect(await metrics.readiness()).toEqual(['worker: starting (not taking jobs yet)']);
    expect(await metrics.registry.metrics()).toContain('snapbot_worker_ready{host="kvm-01"} 0\n');
    await metrics.stop();
    expect(await metrics.readiness()).toEqual(['worker: stopping (takes no new jobs)']);
  });

  it('leave queue depth and heartbeat out (no made-up zeros) before the worker is watched', async () => {
    const text = await new WorkerMetrics({ hostId: 'kvm-01', logger }).registry.metrics();
    expect(text).toContain('# TYPE snapbot_worker_queue_jobs gauge\n');
    expect(text).not.toMatch(/^snapbot_worker_queue_jobs\{/m);
    expect(text).not.toMatch(/^snapbot_worker_heartbeat_last_success_timestamp_seconds\{/m);
  });
});
