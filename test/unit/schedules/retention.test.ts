import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../shared/errors.js';
import { KEEP_RULES, type KeepSpec } from '../../../shared/schedules/keep-spec.js';
import { chooseRetention, type RetentionChoice, type RetentionSnapshot } from '../../../shared/schedules/retention.js';

const SCHEDULE = 'sched-nightly';

function snap(name: string, createdAt: string, options: Partial<RetentionSnapshot> = {}): RetentionSnapshot {
  return { name, createdAt, marker: SCHEDULE, parent: null, current: false, location: 'internal', ...options };
}

/** A linear chain, each the parent of the next, the last one current. */
function chain(entries: Array<[string, string, Partial<RetentionSnapshot>?]>): RetentionSnapshot[] {
  return entries.map(([name, createdAt, options], index) =>
    snap(name, createdAt, { parent: index === 0 ? null : entries[index - 1]![0], current: index === entries.length - 1, ...options }),
  );
}

function choose(snapshots: RetentionSnapshot[], keep: KeepSpec, timeZone = 'UTC'): RetentionChoice {
  return chooseRetention(snapshots, keep, { scheduleId: SCHEDULE, timeZone });
}

const names = (choice: RetentionChoice) => ({
  keep: choice.keep.map((kept) => kept.name),
  prune: choice.prune,
  skip: choice.skip.map((skipped) => `${skipped.name}:${skipped.cause}`),
});

describe('chooseRetention: the rules', () => {
  it('keeps the newest N with last=N and prunes the rest oldest first, leaving manual and other schedules’ snapshots alone', () => {
    const snapshots = chain([
      ['nightly-1', '2026-01-01T02:30:00Z'],
      ['manual-before-upgrade', '2026-01-01T12:00:00Z', { marker: null }],
      ['nightly-2', '2026-01-02T02:30:00Z'],
      ['weekly-1', '2026-01-02T03:00:00Z', { marker: 'sched-weekly' }],
      ['nightly-3', '2026-01-03T02:30:00Z'],
      ['nightly-4', '2026-01-04T02:30:00Z'],
      ['nightly-5', '2026-01-05T02:30:00Z'],
    ]);
    const choice = choose(snapshots, { last: 2 });
    expect(choice).toEqual({
      keep: [
        { name: 'nightly-5', rules: ['last'] },
        { name: 'nightly-4', rules: ['last'] },
      ],
      prune: ['nightly-1', 'nightly-2', 'nightly-3'],
      skip: [],
    });
  });

  it('says which rules keep each snapshot', () => {
    const snapshots = chain([
      ['a', '2026-01-01T02:30:00Z'],
      ['b', '2026-01-02T02:30:00Z'],
      ['c', '2026-01-02T14:30:00Z'],
      ['d', '2026-01-03T02:30:00Z'],
    ]);
    expect(choose(snapshots, { last: 1, daily: 2 }).keep).toEqual([
      { name: 'd', rules: ['last', 'daily'] },
      { name: 'c', rules: ['daily'] },
    ]);
  });

  it('keeps the newest of each of the N most recent days that have one, skipping empty days', () => {
    const snapshots = chain([
      ['jan1', '2026-01-01T02:30:00Z'],
      ['jan2', '2026-01-02T02:30:00Z'],
      ['jan5', '2026-01-05T02:30:00Z'],
      ['jan9-early', '2026-01-09T02:30:00Z'],
      ['jan9-late', '2026-01-09T20:00:00Z'],
    ]);
    expect(names(choose(snapshots, { daily: 3 }))).toEqual({ keep: ['jan9-late', 'jan5', 'jan2'], prune: ['jan1', 'jan9-early'], skip: [] });
  });

  it('counts days in the schedule’s time zone', () => {
    // 22:30Z and 23:30Z on 10 January are one day in UTC, two in Berlin (23:30 and 00:30).
    const snapshots = chain([
      ['a', '2026-01-09T12:00:00Z'],
      ['b', '2026-01-10T22:30:00Z'],
      ['c', '2026-01-10T23:30:00Z'],
    ]);
    expect(names(choose(snapshots, { daily: 2 }, 'UTC')).keep).toEqual(['c', 'a']);
    expect(names(choose(snapshots, { daily: 2 }, 'Europe/Berlin')).keep).toEqual(['c', 'b']);
  });

  it('counts ISO weeks, Monday first, across a year boundary', () => {
    const snapshots = chain([
      ['sat-10', '2026-01-10T02:30:00Z'],
      ['sun-11', '2026-01-11T02:30:00Z'],
      ['mon-12', '2026-01-12T02:30:00Z'],
      ['sun-18', '2026-01-18T02:30:00Z'],
    ]);
    expect(names(choose(snapshots, { weekly: 2 }))).toEqual({ keep: ['sun-18', 'sun-11'], prune: ['sat-10', 'mon-12'], skip: [] });
    // Tuesday 29 December 2026 and Saturday 2 January 2027 are both in week 53 of 2026.
    const newYear = chain([
      ['tue', '2026-12-29T02:30:00Z'],
      ['sat', '2027-01-02T02:30:00Z'],
    ]);
    expect(names(choose(newYear, { weekly: 1 }))).toEqual({ keep: ['sat'], prune: ['tue'], skip: [] });
  });

  it('counts calendar months in the schedule’s zone', () => {
    // 31 January 23:30Z is already 1 February in Berlin.
    const snapshots = chain([
      ['jan-mid', '2026-01-15T02:30:00Z'],
      ['jan-last', '2026-01-31T23:30:00Z'],
      ['feb-mid', '2026-02-15T02:30:00Z'],
    ]);
    expect(names(choose(snapshots, { monthly: 2 }, 'UTC')).keep).toEqual(['feb-mid', 'jan-last']);
    expect(names(choose(snapshots, { monthly: 2 }, 'Europe/Berlin')).keep).toEqual(['feb-mid', 'jan-mid']);
  });

  it('counts the two 02:00 hours of a fall-back night as two hours', () => {
    const snapshots = chain([
      ['summer-0215', '2026-10-25T00:15:00Z'],
      ['summer-0245', '2026-10-25T00:45:00Z'],
      ['winter-0215', '2026-10-25T01:15:00Z'],
    ]);
    expect(names(choose(snapshots, { hourly: 2 }, 'Europe/Berlin'))).toEqual({
      keep: ['winter-0215', 'summer-0245'],
      prune: ['summer-0215'],
      skip: [],
    });
  });

  it('never prunes the current snapshot', () => {
    const snapshots = chain([
      ['a', '2026-01-01T00:00:00Z'],
      ['b', '2026-01-02T00:00:00Z'],
      ['c', '2026-01-03T00:00:00Z'],
    ]).map((s) => ({ ...s, current: s.name === 'a' }));
    const choice = choose(snapshots, { last: 1 });
    expect(names(choice)).toEqual({ keep: ['c'], prune: ['b'], skip: ['a:current'] });
    expect(choice.skip[0]!.reason).toBe("it is the VM's current snapshot.");
  });

  it('skips a marked undo point and a snapshot whose creation time cannot be read', () => {
    const snapshots = chain([
      ['pre-revert-20260101-000000', '2026-01-01T00:00:00Z'],
      ['mystery', 'yesterday'],
      ['a', '2026-01-02T00:00:00Z'],
      ['b', '2026-01-03T00:00:00Z'],
    ]);
    const choice = choose(snapshots, { last: 1 });
    expect(names(choice)).toEqual({ keep: ['b'], prune: ['a'], skip: ['mystery:unknown-time', 'pre-revert-20260101-000000:undo-point'] });
    expect(choice.skip[0]!.reason).toMatch(/"yesterday" cannot be read/);
  });

  it('returns nothing for a VM without snapshots of this schedule', () => {
    expect(choose([snap('manual', '2026-01-01T00:00:00Z', { marker: null, current: true })], { last: 1 })).toEqual({ keep: [], prune: [], skip: [] });
  });
});

describe('chooseRetention: what libvirt can delete', () => {
  it('prunes a disk-only schedule’s chain of external snapshots: each merges into its single child', () => {
    const snapshots = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
      ['s3', '2026-01-03T00:00:00Z', { location: 'external' }],
      ['s4', '2026-01-04T00:00:00Z', { location: 'external' }],
    ]);
    expect(names(choose(snapshots, { last: 2 }))).toEqual({ keep: ['s4', 's3'], prune: ['s1', 's2'], skip: [] });
  });

  it('prunes through a manual external snapshot in the chain and leaves the manual one alone', () => {
    const snapshots = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['manual', '2026-01-01T12:00:00Z', { location: 'external', marker: null }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
      ['s3', '2026-01-03T00:00:00Z', { location: 'external' }],
    ]);
    expect(names(choose(snapshots, { last: 1 }))).toEqual({ keep: ['s3'], prune: ['s1', 's2'], skip: [] });
  });

  it('skips an external snapshot with two children', () => {
    const snapshots = [
      snap('s1', '2026-01-01T00:00:00Z', { location: 'external' }),
      snap('branch', '2026-01-02T00:00:00Z', { location: 'external', parent: 's1', marker: null }),
      snap('s2', '2026-01-03T00:00:00Z', { location: 'external', parent: 's1', current: true }),
    ];
    const choice = choose(snapshots, { last: 1 });
    expect(names(choice)).toEqual({ keep: ['s2'], prune: [], skip: ['s1:several-children'] });
    expect(choice.skip[0]!.reason).toBe('it has 2 child snapshots ("branch", "s2"); libvirt merges an external snapshot only into a single child.');
  });

  it('skips an external snapshot whose overlay holds an internal snapshot (a full manual snapshot or an undo point on top)', () => {
    const snapshots = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['pre-revert-20260101-120000', '2026-01-01T12:00:00Z', { marker: null }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
    ]);
    const choice = choose(snapshots, { last: 1 });
    expect(names(choice)).toEqual({ keep: ['s2'], prune: [], skip: ['s1:holds-internal'] });
    expect(choice.skip[0]!.reason).toMatch(/"pre-revert-20260101-120000" lives in the overlay it created/);
  });

  it('skips external snapshots off the chain the VM runs on after a revert, and prunes those on it', () => {
    // s1 ─ s2 (current, reverted to) ─ s3 ─ s4: s3 and s4 are a branch the VM left.
    const snapshots = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
      ['s3', '2026-01-03T00:00:00Z', { location: 'external' }],
      ['s4', '2026-01-04T00:00:00Z', { location: 'external' }],
    ]).map((s) => ({ ...s, current: s.name === 's2' }));
    expect(names(choose(snapshots, { last: 1 }))).toEqual({ keep: ['s4'], prune: ['s1'], skip: ['s2:current', 's3:off-chain'] });
  });

  it('skips an internal snapshot in an image the VM no longer writes to', () => {
    const snapshots = chain([
      ['full-1', '2026-01-01T00:00:00Z'],
      ['full-2', '2026-01-02T00:00:00Z'],
      ['manual-disk-only', '2026-01-03T00:00:00Z', { location: 'external', marker: null }],
      ['full-3', '2026-01-04T00:00:00Z'],
    ]);
    const choice = choose(snapshots, { last: 1 });
    expect(names(choice)).toEqual({ keep: ['full-3'], prune: [], skip: ['full-1:inactive-image', 'full-2:inactive-image'] });
  });

  it('prunes internal snapshots whatever the tree looks like when the VM has no external ones', () => {
    const snapshots = [
      snap('a', '2026-01-01T00:00:00Z'),
      snap('b', '2026-01-02T00:00:00Z', { parent: 'gone' }),
      snap('c', '2026-01-03T00:00:00Z', { parent: 'a' }),
    ];
    expect(names(choose(snapshots, { last: 1 }))).toEqual({ keep: ['c'], prune: ['a', 'b'], skip: [] });
  });

  it('prunes nothing that needs the chain when the VM has external snapshots and no single current one', () => {
    const snapshots = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
      ['s3', '2026-01-03T00:00:00Z', { location: 'external' }],
    ]).map((s) => ({ ...s, current: false }));
    const choice = choose(snapshots, { last: 1 });
    expect(names(choice)).toEqual({ keep: ['s3'], prune: [], skip: ['s1:chain-unknown', 's2:chain-unknown'] });
    expect(choice.skip[0]!.reason).toMatch(/snapshot tree is incomplete/);
  });
});

describe('chooseRetention: refusals', () => {
  it('refuses two snapshots with one name, an unknown zone and an empty schedule id', () => {
    const twice = [snap('a', '2026-01-01T00:00:00Z'), snap('a', '2026-01-02T00:00:00Z')];
    expect(() => choose(twice, { last: 1 })).toThrow(/names "a" twice/);
    expect(() => choose([], { last: 1 }, 'Mars/Olympus_Mons')).toThrow(SnapbotError);
    expect(() => chooseRetention([], { last: 1 }, { scheduleId: '', timeZone: 'UTC' })).toThrow(/schedule id/);
  });

  it('refuses an empty or broken keep spec rather than pruning everything', () => {
    const snapshots = chain([['a', '2026-01-01T00:00:00Z'], ['b', '2026-01-02T00:00:00Z']]);
    for (const keep of [{}, { last: 0 }, { daily: 1.5 }, { yearly: 1 } as KeepSpec]) {
      expect(() => choose(snapshots, keep)).toThrow(/valid keep spec/);
    }
  });
});

// ---------------------------------------------------------------------------------------
// Property-based: random histories over months.

const FOREIGN_MARKERS = [null, 'sched-weekly', 'sched-nightly-2', 'SCHED-NIGHTLY'] as const;
const ZONES = ['UTC', 'Europe/Berlin', 'America/New_York', 'Asia/Kolkata', 'Australia/Lord_Howe', 'America/Sao_Paulo', 'Pacific/Chatham'];

interface Step {
  gapMinutes: number;
  location: 'internal' | 'external';
  ours: boolean;
  foreign: number;
  parent: 'previous' | 'earlier' | 'none' | 'missing';
  pick: number;
  undoPoint: boolean;
  badTime: boolean;
}

const stepArbitrary: fc.Arbitrary<Step> = fc.record({
  gapMinutes: fc.oneof(fc.integer({ min: 1, max: 90 }), fc.integer({ min: 60, max: 3 * 24 * 60 }), fc.integer({ min: 1, max: 40 * 24 * 60 })),
  location: fc.constantFrom('internal', 'external'),
  ours: fc.integer({ min: 0, max: 2 }).map((n) => n !== 0),
  foreign: fc.nat(FOREIGN_MARKERS.length - 1),
  parent: fc.constantFrom('previous', 'previous', 'previous', 'earlier', 'none', 'missing'),
  pick: fc.nat(),
  undoPoint: fc.integer({ min: 0, max: 9 }).map((n) => n === 0),
  badTime: fc.integer({ min: 0, max: 49 }).map((n) => n === 0),
});

const historyArbitrary = fc
  .record({
    start: fc.integer({ min: Date.parse('2025-01-01T00:00:00Z'), max: Date.parse('2027-01-01T00:00:00Z') }),
    steps: fc.array(stepArbitrary, { maxLength: 40, size: 'max' }),
    // A schedule makes one kind of snapshot; others (manual, undo points) may differ.
    kinds: fc.constantFrom('internal', 'external', 'mixed'),
    // Usually the newest snapshot is current; after a revert an older one; rarely none or two.
    current: fc.oneof(
      { weight: 5, arbitrary: fc.constant([-1]) },
      { weight: 3, arbitrary: fc.nat().map((n) => [n]) },
      { weight: 1, arbitrary: fc.constant([] as number[]) },
      { weight: 1, arbitrary: fc.tuple(fc.nat(), fc.nat()).map(([a, b]) => [a, b]) },
    ),
    zone: fc.constantFrom(...ZONES),
    soundLinks: fc.integer({ min: 0, max: 3 }).map((n) => n !== 0),
    // Half the histories are one tidy chain (what a schedule alone makes), half anything.
    tidy: fc.boolean(),
  })
  .map(({ start, steps, kinds, current, zone, soundLinks, tidy }) => {
    if (tidy) {
      steps = steps.map((step) => ({ ...step, parent: 'previous' }));
      current = [-1];
    }
    let time = start;
    const snapshots: RetentionSnapshot[] = steps.map((step, index) => {
      time += step.gapMinutes * 60_000;
      const name = `${step.undoPoint ? 'pre-revert-' : 'snap-'}${String(index).padStart(2, '0')}`;
      let parent: string | null = null;
      if (index > 0 && step.parent === 'previous') parent = `pending:${index - 1}`;
      if (index > 0 && step.parent === 'earlier') parent = `pending:${step.pick % index}`;
      if (step.parent === 'missing' && !soundLinks) parent = 'deleted-long-ago';
      return {
        name,
        createdAt: step.badTime ? 'not a time' : new Date(time).toISOString(),
        marker: step.ours ? SCHEDULE : FOREIGN_MARKERS[step.foreign]!,
        parent,
        current: false,
        location: kinds === 'mixed' || !step.ours ? step.location : kinds,
      };
    });
    for (const snapshot of snapshots) {
      if (snapshot.parent?.startsWith('pending:')) snapshot.parent = snapshots[Number(snapshot.parent.slice('pending:'.length))]!.name;
    }
    if (snapshots.length > 0) for (const index of current) snapshots[index < 0 ? snapshots.length - 1 : index % snapshots.length]!.current = true;
    return { snapshots, zone };
  });

const keepArbitrary: fc.Arbitrary<KeepSpec> = fc
  .record(Object.fromEntries(KEEP_RULES.map((rule) => [rule, fc.integer({ min: 1, max: 4 })])) as Record<(typeof KEEP_RULES)[number], fc.Arbitrary<number>>, {
    requiredKeys: [],
  })
  .filter((spec) => Object.keys(spec).length > 0);

const RUNS = 400;

/** Snapshots the rules look at: ours, not undo points, with a readable time; newest first. */
function candidatesOf(snapshots: RetentionSnapshot[]): RetentionSnapshot[] {
  return snapshots
    .filter((s) => s.marker === SCHEDULE && !s.name.startsWith('pre-revert-') && !Number.isNaN(Date.parse(s.createdAt)))
    .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt));
}

/**
 * libvirt as the QEMU driver behaves (src/qemu/qemu_snapshot.c qemuSnapshotDeleteValidate,
 * notes/libvirt.md), for a running VM: deleting an external snapshot block-commits the
 * overlay it created (internal snapshots stored in that overlay are lost), and is refused
 * with several children or off the active chain; deleting an internal one is refused when
 * its image is not the one the VM writes to. Children move to the deleted one's parent.
 */
class LibvirtModel {
  private readonly snapshots = new Map<string, { parent: string | null; location: 'internal' | 'external'; current: boolean }>();
  readonly ruined = new Set<string>();

  constructor(list: RetentionSnapshot[]) {
    for (const s of list) this.snapshots.set(s.name, { parent: s.parent, location: s.location, current: s.current });
  }

  private ancestors(name: string): string[] {
    const out: string[] = [];
    for (let parent = this.snapshots.get(name)?.parent ?? null; parent !== null; parent = this.snapshots.get(parent)?.parent ?? null) {
      out.push(parent);
    }
    return out;
  }

  private image(name: string): string {
    return this.ancestors(name).find((a) => this.snapshots.get(a)?.location === 'external') ?? '';
  }

  private activeImage(): string {
    const [current] = [...this.snapshots].filter(([, s]) => s.current);
    if (!current) throw new Error('the model needs one current snapshot');
    return current[1].location === 'external' ? current[0] : this.image(current[0]);
  }

  has(name: string): boolean {
    return this.snapshots.has(name);
  }

  /** Deletes like `virsh snapshot-delete`; returns libvirt's refusal, or null. */
  delete(name: string): string | null {
    const snapshot = this.snapshots.get(name)!;
    const children = [...this.snapshots].filter(([, s]) => s.parent === name).map(([child]) => child);
    const current = [...this.snapshots].find(([, s]) => s.current)?.[0];
    if (snapshot.location === 'external') {
      if (snapshot.current && children.length > 0) return 'deletion of active external snapshot that is not a leaf snapshot is not supported';
      if (children.length > 1) return 'deletion of external disk snapshot with multiple children snapshots not supported';
      if (current === undefined || !this.ancestors(current).includes(name)) return 'could not find base disk source in disk source chain';
      for (const [other, s] of this.snapshots) if (s.location === 'internal' && this.image(other) === name) this.ruined.add(other);
    } else if (this.image(name) !== this.activeImage()) {
      return 'disk image for internal snapshot is not the same as disk image currently used by VM';
    }
    for (const child of children) this.snapshots.get(child)!.parent = snapshot.parent;
    this.snapshots.delete(name);
    return null;
  }
}

describe('chooseRetention over random histories', () => {
  it('puts every snapshot of the schedule in exactly one of keep, prune and skip, and no other snapshot anywhere', () => {
    fc.assert(
      fc.property(historyArbitrary, keepArbitrary, ({ snapshots, zone }, keep) => {
        const choice = chooseRetention(snapshots, keep, { scheduleId: SCHEDULE, timeZone: zone });
        const listed = [...choice.keep.map((k) => k.name), ...choice.prune, ...choice.skip.map((s) => s.name)];
        const ours = snapshots.filter((s) => s.marker === SCHEDULE).map((s) => s.name);
        expect([...listed].sort()).toEqual([...ours].sort());
        expect(new Set(listed).size).toBe(listed.length);
      }),
      { numRuns: RUNS },
    );
  });

  it('never prunes an unmarked or foreign snapshot, the current one, or an undo point', () => {
    fc.assert(
      fc.property(historyArbitrary, keepArbitrary, ({ snapshots, zone }, keep) => {
        const byName = new Map(snapshots.map((s) => [s.name, s]));
        for (const name of chooseRetention(snapshots, keep, { scheduleId: SCHEDULE, timeZone: zone }).prune) {
          const snapshot = byName.get(name)!;
          expect(snapshot.marker).toBe(SCHEDULE);
          expect(snapshot.current).toBe(false);
          expect(name.startsWith('pre-revert-')).toBe(false);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('prunes oldest first', () => {
    fc.assert(
      fc.property(historyArbitrary, keepArbitrary, ({ snapshots, zone }, keep) => {
        const byName = new Map(snapshots.map((s) => [s.name, s]));
        const times = chooseRetention(snapshots, keep, { scheduleId: SCHEDULE, timeZone: zone }).prune.map((name) => Date.parse(byName.get(name)!.createdAt));
        expect(times).toEqual([...times].sort((a, b) => a - b));
      }),
      { numRuns: RUNS },
    );
  });

  it('prunes only what libvirt accepts deleting in that order, and no kept or remaining snapshot loses its data', () => {
    let prunedExternal = 0;
    let prunedInternal = 0;
    fc.assert(
      fc.property(historyArbitrary, keepArbitrary, ({ snapshots, zone }, keep) => {
        const choice = chooseRetention(snapshots, keep, { scheduleId: SCHEDULE, timeZone: zone });
        const names = new Set(snapshots.map((s) => s.name));
        const linksSound = snapshots.every((s) => s.parent === null || names.has(s.parent));
        const currents = snapshots.filter((s) => s.current).length;
        if (!linksSound || currents !== 1) {
          // Without a known chain only internal snapshots of a VM without external ones go.
          if (choice.prune.length > 0) expect(snapshots.every((s) => s.location === 'internal')).toBe(true);
          return;
        }
        const libvirt = new LibvirtModel(snapshots);
        for (const name of choice.prune) {
          expect(libvirt.delete(name), `deleting ${name}`).toBeNull();
          if (snapshots.find((s) => s.name === name)!.location === 'external') prunedExternal++;
          else prunedInternal++;
        }
        expect([...libvirt.ruined]).toEqual([]);
        for (const kept of choice.keep) expect(libvirt.has(kept.name)).toBe(true);
      }),
      { numRuns: RUNS },
    );
    // The histories must exercise the merges, not only the refusals.
    expect(prunedExternal).toBeGreaterThan(RUNS / 4);
    expect(prunedInternal).toBeGreaterThan(RUNS / 4);
  });

  it('with last=N keeps exactly the min(N, count) newest candidates and always the newest one', () => {
    fc.assert(
      fc.property(historyArbitrary, fc.integer({ min: 1, max: 12 }), ({ snapshots, zone }, last) => {
        const choice = chooseRetention(snapshots, { last }, { scheduleId: SCHEDULE, timeZone: zone });
        const candidates = candidatesOf(snapshots);
        expect(choice.keep.map((k) => k.name)).toEqual(candidates.slice(0, last).map((s) => s.name));
        expect(choice.keep).toHaveLength(Math.min(last, candidates.length));
      }),
      { numRuns: RUNS },
    );
  });

  it('keeps, per period rule, the newest candidate of each of the N most recent UTC periods that have one', () => {
    // An independent reading of the periods for UTC: ISO strings and days since the epoch.
    const periodOf = {
      hourly: (iso: string) => iso.slice(0, 13),
      daily: (iso: string) => iso.slice(0, 10),
      monthly: (iso: string) => iso.slice(0, 7),
      // 1970-01-01 was a Thursday: whole weeks from Monday 1969-12-29.
      weekly: (iso: string) => String(Math.floor((Math.floor(Date.parse(iso) / 86_400_000) + 3) / 7)),
    };
    fc.assert(
      fc.property(historyArbitrary, fc.constantFrom('hourly', 'daily', 'weekly', 'monthly' as const), fc.integer({ min: 1, max: 6 }), ({ snapshots }, rule, count) => {
        const choice = chooseRetention(snapshots, { [rule]: count }, { scheduleId: SCHEDULE, timeZone: 'UTC' });
        const expected: string[] = [];
        const seen = new Set<string>();
        for (const candidate of candidatesOf(snapshots)) {
          const period = periodOf[rule](new Date(Date.parse(candidate.createdAt)).toISOString());
          if (seen.has(period) || seen.size === count) continue;
          seen.add(period);
          expected.push(candidate.name);
        }
        expect(choice.keep.map((k) => k.name)).toEqual(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it('keeps the union of its rules and nothing else, the newest candidate always', () => {
    fc.assert(
      fc.property(historyArbitrary, keepArbitrary, ({ snapshots, zone }, keep) => {
        const options = { scheduleId: SCHEDULE, timeZone: zone };
        const choice = chooseRetention(snapshots, keep, options);
        const union = new Set<string>();
        for (const rule of KEEP_RULES) {
          if (keep[rule] === undefined) continue;
          for (const kept of chooseRetention(snapshots, { [rule]: keep[rule] }, options).keep) union.add(kept.name);
        }
        expect(new Set(choice.keep.map((k) => k.name))).toEqual(union);
        const [newest] = candidatesOf(snapshots);
        if (newest) expect(choice.keep[0]?.name).toBe(newest.name);
      }),
      { numRuns: 200 },
    );
  });

  it('does not depend on the order of the listing', () => {
    fc.assert(
      fc.property(historyArbitrary, keepArbitrary, fc.infiniteStream(fc.integer()), ({ snapshots, zone }, keep, randoms) => {
        const options = { scheduleId: SCHEDULE, timeZone: zone };
        const shuffled = snapshots
          .map((snapshot) => ({ snapshot, key: randoms.next().value as number }))
          .sort((a, b) => a.key - b.key)
          .map(({ snapshot }) => snapshot);
        expect(chooseRetention(shuffled, keep, options)).toEqual(chooseRetention(snapshots, keep, options));
      }),
      { numRuns: 200 },
    );
  });
});

describe('chooseRetention: what it says', () => {
  it('refuses its inputs as VALIDATION errors, quoting a long snapshot name only in part', () => {
    const codeOf = (run: () => unknown) => {
      try {
        run();
      } catch (error) {
        return (error as SnapbotError).code;
      }
      return 'accepted';
    };
    expect(codeOf(() => choose([snap('a', '2026-01-01T00:00:00Z'), snap('a', '2026-01-02T00:00:00Z')], { last: 1 }))).toBe('VALIDATION');
    expect(codeOf(() => choose([], {}))).toBe('VALIDATION');
    expect(codeOf(() => chooseRetention([], { last: 1 }, { scheduleId: '', timeZone: 'UTC' }))).toBe('VALIDATION');
    const long = 'n'.repeat(100);
    expect(() => choose([snap(long, '2026-01-01T00:00:00Z'), snap(long, '2026-01-02T00:00:00Z')], { last: 1 })).toThrow(
      `The snapshot list names "${'n'.repeat(80)}…" twice.`,
    );
    const eighty = 'e'.repeat(80);
    expect(() => choose([snap(eighty, '2026-01-01T00:00:00Z'), snap(eighty, '2026-01-02T00:00:00Z')], { last: 1 })).toThrow(
      `The snapshot list names "${eighty}" twice.`,
    );
  });

  it('gives the reason for each snapshot it leaves alone', () => {
    const undo = choose([snap('pre-revert-20260101-000000', '2026-01-01T00:00:00Z'), snap('s1', '2026-01-02T00:00:00Z')], { last: 1 });
    expect(undo.skip).toEqual([
      { name: 'pre-revert-20260101-000000', cause: 'undo-point', reason: 'it is an undo point snapbot took before a revert; only the revert code prunes those.' },
    ]);
    const inactive = chain([
      ['full-1', '2026-01-01T00:00:00Z'],
      ['manual-disk-only', '2026-01-02T00:00:00Z', { location: 'external', marker: null }],
      ['full-2', '2026-01-03T00:00:00Z'],
    ]);
    expect(choose(inactive, { last: 1 }).skip).toEqual([
      {
        name: 'full-1',
        cause: 'inactive-image',
        reason: 'it lives in a disk image the VM no longer writes to (an external snapshot was taken after it); libvirt refuses to delete it there.',
      },
    ]);
    const reverted = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
      ['s3', '2026-01-03T00:00:00Z', { location: 'external' }],
    ]).map((s) => ({ ...s, current: s.name === 's1' }));
    expect(choose(reverted, { last: 1 }).skip).toContainEqual({
      name: 's2',
      cause: 'off-chain',
      reason: 'it is not on the disk chain the VM runs on (a revert moved away from it), so libvirt cannot merge it.',
    });
  });

  it('names the internal snapshot, or snapshots, an overlay holds', () => {
    const one = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['full', '2026-01-01T12:00:00Z', { marker: null }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
    ]);
    expect(choose(one, { last: 1 }).skip[0]!.reason).toBe('internal snapshot "full" lives in the overlay it created and would be lost when libvirt merges it.');
    const two = chain([
      ['s1', '2026-01-01T00:00:00Z', { location: 'external' }],
      ['full-a', '2026-01-01T12:00:00Z', { marker: null }],
      ['full-b', '2026-01-01T13:00:00Z', { marker: null }],
      ['s2', '2026-01-02T00:00:00Z', { location: 'external' }],
    ]);
    expect(choose(two, { last: 1 }).skip[0]!.reason).toBe('internal snapshots "full-a", "full-b" live in the overlay it created and would be lost when libvirt merges it.');
  });

  it('names an external snapshot’s children oldest first whatever the listing order, three at most', () => {
    const family = (count: number) => [
      snap('s1', '2026-01-01T00:00:00Z', { location: 'external' }),
      ...Array.from({ length: count }, (_, index) =>
        snap(`child-${index + 1}`, `2026-01-0${index + 2}T00:00:00Z`, { location: 'external', parent: 's1', marker: null, current: index === count - 1 }),
      ),
      snap('s2', '2026-01-09T00:00:00Z', { parent: `child-${count}`, location: 'internal' }),
    ];
    const three = choose([...family(3)].reverse(), { last: 1 });
    expect(three.skip[0]!.reason).toBe('it has 3 child snapshots ("child-1", "child-2", "child-3"); libvirt merges an external snapshot only into a single child.');
    const five = choose([...family(5)].reverse(), { last: 1 });
    expect(five.skip[0]!.reason).toBe('it has 5 child snapshots ("child-1", "child-2", "child-3" and 2 more); libvirt merges an external snapshot only into a single child.');
  });

  it('prunes snapshots made in the same second in the order of their names', () => {
    const snapshots = ['c', 'a', 'b', 'd'].map((name) => snap(name, '2026-01-01T00:00:00Z'));
    snapshots.push(snap('newest', '2026-01-02T00:00:00Z'));
    expect(choose(snapshots, { last: 1 }).prune).toEqual(['a', 'b', 'c', 'd']);
  });
});
