import type { RedisClient } from '../shared/redis.js';
import { SnapbotError, type ErrorPayload } from '../shared/errors.js';
import {
  ACQUIRE_PERMIT_SCRIPT,
  fleetKeys,
  fleetTargetStateSchema,
  MOVE_TARGETS_SCRIPT,
  moveTargetsArgs,
  type FleetJobRef,
  type FleetTargetState,
} from '../shared/fleet.js';

/**
 * The worker's side of a fleet run, for one job: respects the run's concurrency limits,
 * refuses to start a target that was cancelled (or given up with its host), and records
 * how the target ended, so the bot can draw the run's summary from Redis alone.
 */
export class FleetGate {
  private readonly keys: ReturnType<typeof fleetKeys>;

  constructor(
    private readonly redis: RedisClient,
    prefix: string,
    private readonly ref: FleetJobRef,
    private readonly jobId: string,
    private readonly hostId: string,
    private readonly permitLeaseMs: number,
  ) {
    this.keys = fleetKeys(prefix, ref.runId);
  }

  /** The target's state now; a target not in the run is an internal error. */
  async state(): Promise<FleetTargetState> {
    const raw = await this.redis.hget(this.keys.targets, String(this.ref.index));
    if (raw === null) throw new SnapbotError('INTERNAL', `Fleet run ${this.ref.runId} has no target ${this.ref.index} (expired?).`);
    return fleetTargetStateSchema.parse(JSON.parse(raw));
  }

  /**
   * 'start' when the target may start; throws CANCELLED (permanent) when it may not. With
   * `rerun`, a target found `done` gets 'finished': an earlier run of this job did the work
   * and could not report (its worker died, or a failover lost the completion), so this run
   * completes as recovered.
   */
  async assertMayStart(rerun = false): Promise<'start' | 'finished'> {
    const state = await this.state();
    if (state.state === 'queued' || state.state === 'running') return 'start';
    if (rerun && state.state === 'done') return 'finished';
    throw notStarted(this.ref.runId, state.state);
  }

  /** One permit of the run's global and per-host limits, or false when they are all taken. */
  async tryAcquirePermit(): Promise<boolean> {
    if (this.ref.global === 0 && this.ref.perHost === 0) return true;
    const taken = await this.redis.eval(
      ACQUIRE_PERMIT_SCRIPT,
      2,
      this.keys.permits,
      this.keys.hostPermits(this.hostId),
      this.jobId,
      String(this.ref.global),
      String(this.ref.perHost),
      String(this.permitLeaseMs),
    );
    return taken === 1;
  }

  async releasePermit(): Promise<void> {
    if (this.ref.global === 0 && this.ref.perHost === 0) return;
    await this.redis.multi().zrem(this.keys.permits, this.jobId).zrem(this.keys.hostPermits(this.hostId), this.jobId).exec();
  }

  /**
   * Moves the target to running, atomically against a Cancel: 'started'; 'finished' when
   * it is done already (an earlier run of this job did it); CANCELLED when it lost.
   */
  async markRunning(): Promise<'started' | 'finished'> {
    const outcome = await this.move({ state: 'running', at: Date.now() });
    if (outcome === 'ok') return 'started';
    if (outcome === 'done') return 'finished';
    throw notStarted(this.ref.runId, outcome);
  }

  async markDone(durationMs: number, note: string | null): Promise<void> {
    await this.record({ state: 'done', at: Date.now(), durationMs, note });
  }

  async markFailed(failure: ErrorPayload): Promise<void> {
    await this.record({ state: 'failed', at: Date.now(), code: failure.code, message: failure.message });
  }

  /** Records how the target ended, unless it was settled meanwhile (given up with its host): a settled target stays as it is. */
  private async record(state: FleetTargetState): Promise<void> {
    await this.move(state);
  }

  /** One step of the target's state table (shared/fleet.ts): 'ok', or the state it is in. */
  private async move(state: FleetTargetState): Promise<string> {
    const [outcome] = (await this.redis.eval(MOVE_TARGETS_SCRIPT, 1, this.keys.targets, ...moveTargetsArgs(state, [this.ref.index]))) as string[];
    return outcome ?? 'missing';
  }
}

function notStarted(runId: string, state: string): SnapbotError {
  const why = state === 'cancelled' ? 'it was cancelled' : state === 'failed' ? 'the run gave it up (its host was offline too long)' : `it is ${state}`;
  return new SnapbotError('CANCELLED', `Fleet run ${runId}: this target was not started because ${why}. Nothing was done.`, { permanent: true });
}
