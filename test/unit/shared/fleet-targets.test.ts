import { describe, expect, it } from 'vitest';
import {
  FLEET_RETENTION_SECONDS,
  fleetJobId,
  fleetJobRefSchema,
  fleetKeys,
  fleetTargetStateSchema,
  isTerminal,
  moveTargetsArgs,
  TARGET_MOVES,
  type FleetTargetState,
} from '../../../shared/fleet.js';

describe('fleet target states', () => {
  it('counts done, failed and cancelled targets as finished, so a host going offline later does not make them lost', () => {
    expect(isTerminal('done')).toBe(true);
    expect(isTerminal('failed')).toBe(true);
    expect(isTerminal('cancelled')).toBe(true);
  });

  it('counts queued and running targets as unfinished', () => {
    expect(isTerminal('queued')).toBe(false);
    expect(isTerminal('running')).toBe(false);
  });

  it('reads each state with its own fields', () => {
    const states: FleetTargetState[] = [
      { state: 'queued' },
      { state: 'running', at: 1 },
      { state: 'done', at: 2, durationMs: 30, note: null },
      { state: 'done', at: 2, durationMs: 30, note: 'already there' },
      { state: 'failed', at: 3, code: 'BUSY', message: 'busy' },
      { state: 'cancelled', at: 4 },
    ];
    for (const state of states) expect(fleetTargetStateSchema.parse(state)).toEqual(state);
  });

  it.each([
    { state: 'paused' },
    { state: 'running' },
    { state: 'done', at: 2, durationMs: 30 },
    { state: 'failed', at: 3, code: 'BUSY' },
    { state: 'cancelled', at: '4' },
  ])('refuses %j', (state) => {
    expect(fleetTargetStateSchema.safeParse(state).success).toBe(false);
  });

});

describe('the state table of a fleet target', () => {
  it('never leaves a settled state: nothing moves out of done, failed or cancelled', () => {
    for (const from of Object.values(TARGET_MOVES)) {
      expect(from).not.toContain('done');
      expect(from).not.toContain('failed');
      expect(from).not.toContain('cancelled');
    }
  });

  it('starts only what is queued (or running again after a crash), and finishes what runs or what a failover lost the start of', () => {
    expect(TARGET_MOVES.running).toEqual(['queued', 'running']);
    expect(TARGET_MOVES.done).toEqual(['queued', 'running']);
  });

  it('cancels only targets that have not started, and gives up with its host what is queued or running', () => {
    expect(TARGET_MOVES.cancelled).toEqual(['queued']);
    expect(TARGET_MOVES.failed).toEqual(['queued', 'running']);
  });

  it('passes the new state, the states it may come from and the indexes to the one script', () => {
    expect(moveTargetsArgs({ state: 'cancelled', at: 5 }, [0, 7])).toEqual(['{"state":"cancelled","at":5}', 'queued', '0', '7']);
    expect(moveTargetsArgs({ state: 'failed', at: 6, code: 'HOST_OFFLINE', message: 'gone' }, [3])).toEqual([
      '{"state":"failed","at":6,"code":"HOST_OFFLINE","message":"gone"}',
      'queued,running',
      '3',
    ]);
  });

  it('never moves a target back to queued', () => {
    expect(() => moveTargetsArgs({ state: 'queued' }, [0])).toThrow('a fleet target never moves back to queued');
  });
});

describe('the fleet part of a job', () => {
  const ref = { runId: 'a1b2c3', index: 0, perHost: 0, global: 0 };

  it('takes a run id of 6 to 32 lowercase hex digits', () => {
    expect(fleetJobRefSchema.parse(ref)).toEqual(ref);
    expect(fleetJobRefSchema.safeParse({ ...ref, runId: '0123456789abcdef0123456789abcdef' }).success).toBe(true);
  });

  it.each(['a1b2c', '0123456789abcdef0123456789abcdef0', 'A1B2C3', 'a1b2c3 ', ' a1b2c3', 'x-a1b2c3', 'a1b2c3-x', 'a1b2g3', ''])(
    'refuses run id %j',
    (runId) => {
      expect(fleetJobRefSchema.safeParse({ ...ref, runId }).success).toBe(false);
    },
  );

  it.each([
    ['index', -1],
    ['index', 1.5],
    ['perHost', -1],
    ['perHost', 0.5],
    ['global', -1],
    ['global', 2.5],
  ])('refuses %s %d', (field, value) => {
    expect(fleetJobRefSchema.safeParse({ ...ref, [field]: value }).success).toBe(false);
  });

  it('takes large indexes and limits', () => {
    expect(fleetJobRefSchema.safeParse({ runId: 'abcdef', index: 9999, perHost: 16, global: 64 }).success).toBe(true);
  });
});

describe('fleet keys and ids', () => {
  it('keeps every key of a run under its prefix and run id', () => {
    const keys = fleetKeys('snapbot', 'a1b2c3');
    expect({ ...keys, hostPermits: keys.hostPermits('kvm-1') }).toMatchObject({
      run: 'snapbot:fleet:a1b2c3',
      targets: 'snapbot:fleet:a1b2c3:targets',
      permits: 'snapbot:fleet:a1b2c3:permits',
      hostPermits: 'snapbot:fleet:a1b2c3:permits:kvm-1',
      watcher: 'snapbot:fleet:a1b2c3:watcher',
    });
  });

  it('gives each target a fixed job id, so a retry cannot queue it twice', () => {
    expect(fleetJobId('a1b2c3', 7)).toBe('fleet-a1b2c3-7');
  });

  it('keeps finished runs for a week', () => {
    expect(FLEET_RETENTION_SECONDS).toBe(604_800);
  });
});
