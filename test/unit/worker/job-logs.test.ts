import type { Job } from 'bullmq';
import type { Redis } from 'ioredis';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { capabilitiesForLibvirt } from '../../../shared/hosts.js';
import { createLogger, type Logger } from '../../../shared/logger.js';
import { HostSlots } from '../../../worker/host-slots.js';
import { VirshHypervisor } from '../../../worker/hypervisor/virsh.js';
import type { VirshRunner } from '../../../worker/hypervisor/virsh-runner.js';
import { HostInventory } from '../../../worker/inventory.js';
import { JobAdmission } from '../../../worker/job-admission.js';
import { Signer } from '../../../shared/signing.js';
import { createJobProcessor } from '../../../worker/process-job.js';
import { VmLocks } from '../../../worker/vm-lock.js';

/**
 * Issue 9: a `virsh failed` line names the job it belongs to, and `host` appears once
 * per line. The real job processor and virsh adapter, a scripted runner, pino to memory.
 */
const UUID = '6f1d2c3b-0a9e-4d8c-b7a6-5e4f3d2c1b0a';

function capture() {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      lines.push(...chunk.toString().split('\n').filter((line) => line !== ''));
      done();
    },
  });
  return { lines, logger: createLogger('snapbot-worker', 'debug', stream) };
}

/** A host with one running VM whose snapshot queries fail: libvirtd went away. */
const runner: VirshRunner = async ({ args }) => {
  const ok = (stdout: string) => ({ exitCode: 0, signal: undefined, stdout, stderr: '', durationMs: 1, timedOut: false });
  const sub = args[1];
  if (sub === 'list') return ok(`${UUID}\n\n`);
  if (sub === 'domname') return ok('web-01\n\n');
  if (sub === 'domstate') return ok('running\n\n');
  return { exitCode: 1, signal: undefined, stdout: '', stderr: 'error: failed to connect to the hypervisor\n', durationMs: 1, timedOut: false };
};

function processorFor(root: Logger) {
  const hypervisor = new VirshHypervisor({ virshPath: 'virsh', uri: 'qemu:///system', timeoutMs: 1000, queryTimeoutMs: 1000, logger: root, hostId: 'kvm-a', runner });
  return createJobProcessor({
    hostId: 'kvm-a',
    hypervisor,
    inventory: new HostInventory(hypervisor, root),
    locks: new VmLocks(),
    slots: new HostSlots(2),
    capabilities: () => capabilitiesForLibvirt('9.0.0'),
    logger: root,
    redis: {} as Redis,
    prefix: '{test}',
    fleetPermitLeaseMs: 1000,
    // An info job needs no signature, so the admission never reaches Redis here.
    admission: new JobAdmission({ verifier: Signer.generate(), redis: {} as Redis, prefix: '{test}', hostId: 'kvm-a', logger: root }),
  });
}

function createJob(id: string): Job {
  return {
    id,
    name: 'info',
    data: { kind: 'info', host: 'kvm-a', vm: 'web-01', requestedBy: 'test', name: 'before-upgrade' },
    attemptsMade: 0,
    stalledCounter: 0,
    opts: { attempts: 1 },
    timestamp: Date.now(),
    progress: 0,
    updateProgress: async () => undefined,
  } as unknown as Job;
}

describe('job log lines', () => {
  it.each([
    ['a root logger that carries host (as worker/main.ts makes it)', true],
    ['a root logger without host', false],
  ])('virsh failed names the job and the VM, with host once per line, under %s', async (_label, rootHasHost) => {
    const { lines, logger } = capture();
    const root = rootHasHost ? logger.child({ host: 'kvm-a' }) : logger;
    await expect(processorFor(root)(createJob('job-42'))).rejects.toThrow(/HYPERVISOR_UNAVAILABLE/);

    const failed = lines.filter((line) => line.includes('"msg":"virsh failed"'));
    expect(failed.length).toBeGreaterThanOrEqual(1);
    for (const line of failed) expect(JSON.parse(line)).toMatchObject({ jobId: 'job-42', host: 'kvm-a', vm: 'web-01', kind: 'info', code: 'HYPERVISOR_UNAVAILABLE' });
    // Every line about the job says which job, and no line says host twice.
    const aboutJob = lines.filter((line) => line.includes('"jobId"'));
    expect(aboutJob.length).toBeGreaterThanOrEqual(2);
    for (const line of lines) expect(line.match(/"host":/g)?.length ?? 0, line).toBeLessThanOrEqual(1);
    for (const line of aboutJob) expect(line.match(/"host":/g), line).toHaveLength(1);
  });

  it('keeps the per-job logger to that job: the next job logs its own id', async () => {
    const { lines, logger } = capture();
    const process = processorFor(logger.child({ host: 'kvm-a' }));
    await expect(process(createJob('job-1'))).rejects.toThrow();
    await expect(process(createJob('job-2'))).rejects.toThrow();
    const ids = lines.filter((line) => line.includes('"msg":"virsh failed"')).map((line) => (JSON.parse(line) as { jobId: string }).jobId);
    expect(ids.length).toBeGreaterThanOrEqual(2);
    expect([...new Set(ids)]).toEqual(['job-1', 'job-2']);
  });
});
