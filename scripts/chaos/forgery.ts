import type { SnapbotCore } from '../../bot/core/core.js';
import { decodeFailedReason } from '../../shared/errors.js';
import type { SnapshotJob } from '../../shared/jobs.js';
import type { ChaosHost } from './hosts.js';
import { sleep } from './processes.js';
import type { Random } from './random.js';

/**
 * Jobs that anyone who can write to Redis could add, sent while the chaos goes on: a
 * plain `queue.add` of an unsigned create, a genuine signed job with its snapshot name
 * changed, and a genuine signed job added again under another id (a replay). Workers
 * must refuse each (FORBIDDEN) before any virsh call; none may execute.
 */

export type ForgeryKind = 'unsigned' | 'tampered' | 'replayed';
const KINDS: readonly ForgeryKind[] = ['unsigned', 'tampered', 'replayed'];

interface Forged {
  jobId: string;
  kind: ForgeryKind;
  host: string;
  /** The snapshot name it asks for (a forged name, or a genuine target's for a replay). */
  name: string;
}

export interface ForgeryReport {
  sent: number;
  byKind: Record<ForgeryKind, number>;
  /** Refused by a worker with FORBIDDEN. */
  refused: number;
  /** Completed, or seen by virsh as a mutation, or left a snapshot: must be 0. */
  executed: number;
  /** Not settled when checked. */
  unsettled: number;
  /** queue.add calls that failed (Redis away) and were tried again later. */
  addFailures: number;
  problems: string[];
}

/** A genuine signed job that may be copied: one whose target is done (see docs/RELIABILITY.md, "not covered"). */
export type GenuineSource = () => Promise<{ host: string; jobId: string } | null>;

export class Forger {
  private readonly forged: Forged[] = [];
  private addFailures = 0;
  private next = 0;
  private running: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly core: SnapbotCore,
    private readonly hosts: readonly ChaosHost[],
    private readonly random: Random,
    private readonly genuine: GenuineSource,
  ) {}

  /** Sends one forged job every `everyMs` (jittered) until stop(), at most `max`. */
  start(everyMs: number, max: number): void {
    this.running = (async () => {
      while (!this.stopped && this.forged.length < max) {
        await sleep(this.random.int(Math.round(everyMs / 2), Math.round(everyMs * 1.5)));
        if (this.stopped) break;
        await this.forgeOne().catch(() => {
          this.addFailures += 1;
        });
      }
    })();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
  }

  /** Adds one forged job of the next kind. */
  async forgeOne(): Promise<void> {
    const kind = KINDS[this.next % KINDS.length]!;
    const n = this.next;
    const host = this.random.pick(this.hosts);
    const vm = this.random.pick(host.vms);
    const queue = (hostId: string) => this.core.queueFor(hostId);
    if (kind !== 'unsigned') {
      const source = await this.genuine();
      const job = source ? await queue(source.host).getJob(source.jobId) : undefined;
      if (source && job) {
        const data = job.data as SnapshotJob & { name: string };
        const jobId = `forged-${kind}-${n}`;
        // Tampered: another snapshot name under the genuine signature (and no fleet reference).
        // Replayed: the genuine job, byte for byte, under a new job id.
        const copy = kind === 'tampered' ? { ...withoutFleet(data), name: `forged-t-${n}` } : data;
        await queue(source.host).add(copy.kind, copy, { jobId, attempts: 1 });
        this.forged.push({ jobId, kind, host: source.host, name: copy.name });
        this.next += 1;
        return;
      }
    }
    const jobId = `forged-unsigned-${n}`;
    const name = `forged-u-${n}`;
    const data = { kind: 'create', host: host.hostId, vm: vm.name, uuid: vm.uuid, requestedBy: 'discord:1001', name, mode: 'disk-only' };
    await queue(host.hostId).add('create', data, { jobId, attempts: 1 });
    this.forged.push({ jobId, kind: 'unsigned', host: host.hostId, name });
    this.next += 1;
  }

  /**
   * Waits (up to `timeoutMs`) for every forged job to be settled, then checks: refused
   * with FORBIDDEN, never completed, never in a virsh mutation's argv, no snapshot left.
   */
  async verify(timeoutMs: number): Promise<ForgeryReport> {
    const byKind: Record<ForgeryKind, number> = { unsigned: 0, tampered: 0, replayed: 0 };
    for (const entry of this.forged) byKind[entry.kind] += 1;
    const report: ForgeryReport = { sent: this.forged.length, byKind, refused: 0, executed: 0, unsettled: 0, addFailures: this.addFailures, problems: [] };
    const deadline = Date.now() + timeoutMs;
    const executedIds = new Set<string>();
    for (const entry of this.forged) {
      let state = 'missing';
      let reason: string | undefined;
      for (;;) {
        const job = await this.core.queueFor(entry.host).getJob(entry.jobId);
        state = job ? await job.getState() : 'missing';
        reason = job?.failedReason;
        if (state === 'failed' || state === 'completed' || state === 'missing' || Date.now() > deadline) break;
        await sleep(200);
      }
      if (state === 'completed') {
        executedIds.add(entry.jobId);
        report.problems.push(`forged job ${entry.jobId} (${entry.kind}) completed on ${entry.host}`);
      } else if (state === 'failed' && decodeFailedReason(reason).code === 'FORBIDDEN') {
        report.refused += 1;
      } else if (state === 'failed') {
        report.problems.push(`forged job ${entry.jobId} (${entry.kind}) failed, but not FORBIDDEN: ${reason}`);
      } else {
        report.unsettled += 1;
        report.problems.push(`forged job ${entry.jobId} (${entry.kind}) is ${state}`);
      }
    }
    // What virsh was asked to do, and what the hosts hold.
    const ids = this.forged.map((entry) => entry.jobId);
    const forgedNames = new Set(this.forged.filter((entry) => entry.kind !== 'replayed').map((entry) => entry.name));
    for (const host of this.hosts) {
      for (const call of host.fake.calls()) {
        if (!call.argv.some((arg) => arg.startsWith('snapshot-') && arg !== 'snapshot-list' && arg !== 'snapshot-dumpxml' && arg !== 'snapshot-info' && arg !== 'snapshot-current')) continue;
        const hit = ids.find((id) => call.argv.some((arg) => arg.includes(`[snapbot job ${id}]`))) ?? [...forgedNames].find((name) => call.argv.includes(`--name=${name}`) || call.argv.includes(`--snapshotname=${name}`));
        if (hit) {
          executedIds.add(hit);
          report.problems.push(`virsh on ${host.hostId} ran a forged job's mutation: ${call.argv.join(' ')}`);
        }
      }
      for (const vm of host.vms) {
        for (const snapshot of host.snapshotsOf(vm)) {
          const byForged = ids.find((id) => snapshot.description?.includes(`[snapbot job ${id}]`));
          if (forgedNames.has(snapshot.name) || byForged) {
            executedIds.add(byForged ?? snapshot.name);
            report.problems.push(`${vm.name}@${host.hostId} holds '${snapshot.name}', made by a forged job`);
          }
        }
      }
    }
    report.executed = executedIds.size;
    return report;
  }
}

function withoutFleet<T extends object>(data: T): T {
  const { fleet: _fleet, ...rest } = data as T & { fleet?: unknown };
  return rest as T;
}
