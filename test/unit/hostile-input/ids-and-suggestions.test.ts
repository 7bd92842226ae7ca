/**
 * What comes back from Discord: button custom ids (anyone can craft an interaction with
 * any custom id) and autocomplete values (any text, not only what was suggested).
 * Parsing gives a result or nothing; what the bot builds, it parses back.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  expandSuggestedName,
  MAX_SUGGESTIONS,
  suggestFleetSnapshotNames,
  suggestFleetTargets,
  suggestHosts,
  suggestionValueFor,
  suggestSnapshots,
  suggestVms,
} from '../../../bot/core/suggest.js';
import { approvalButtonId, fleetButtonId, fleetListButtonId, snapshotListButtonId } from '../../../bot/discord/buttons/ids.js';
import { DISCORD_LIMITS, fitChoices } from '../../../bot/discord/render/discord-limits.js';
import { findHiddenCharacter } from '../../../shared/names.js';
import type { HostStatus } from '../../../shared/hosts.js';
import { hostileText, RUNS } from './arbitraries.js';

const hex = (min: number, max: number) => fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: min, maxLength: max });
/** Custom ids near the real ones, and anything at all. */
const customId = fc.oneof(
  hostileText(),
  fc
    .tuple(fc.constantFrom('approval', 'fleet', 'snapshot-list', 'fleet-list', 'Fleet', ''), fc.oneof(hex(0, 40), hostileText(4)), fc.constantFrom('approve', 'deny', 'confirm', 'cancel', 'retry', '0', '-1', '007', '-0', '1234567', 'x'))
    .map((parts) => parts.join(':')),
);

describe('button custom ids', () => {
  it('parse to what they were built from', () => {
    fc.assert(
      fc.property(hex(6, 32), fc.constantFrom('approve', 'deny') as fc.Arbitrary<'approve' | 'deny'>, fc.constantFrom('confirm', 'cancel', 'retry') as fc.Arbitrary<'confirm' | 'cancel' | 'retry'>, fc.integer({ min: -99_999, max: 999_999 }), hex(1, 32), (id, decision, action, page, listing) => {
        expect(approvalButtonId.parse(approvalButtonId.build(id, decision))).toEqual({ id, decision });
        expect(fleetButtonId.parse(fleetButtonId.build(id, action))).toEqual({ runId: id, action });
        expect(snapshotListButtonId.parse(snapshotListButtonId.build(listing, page))).toEqual({ id: listing, page });
        expect(fleetListButtonId.parse(fleetListButtonId.build(listing, page))).toEqual({ id: listing, page });
        for (const built of [approvalButtonId.build(id, decision), fleetButtonId.build(id, action), snapshotListButtonId.build(listing, page), fleetListButtonId.build(listing, page)]) {
          expect(built.length).toBeLessThanOrEqual(DISCORD_LIMITS.customId);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('from anyone parse to nothing, or to what the bot would build for the same button', () => {
    fc.assert(
      fc.property(customId, (id) => {
        const approval = approvalButtonId.parse(id);
        if (approval) expect(approvalButtonId.build(approval.id, approval.decision)).toBe(id);
        const fleet = fleetButtonId.parse(id);
        if (fleet) expect(fleetButtonId.build(fleet.runId, fleet.action)).toBe(id);
        for (const pages of [snapshotListButtonId, fleetListButtonId]) {
          const parsed = pages.parse(id);
          if (!parsed) continue;
          expect(Number.isSafeInteger(parsed.page)).toBe(true);
          // `007` and `-0` are accepted and read as page 7 and 0: the same button.
          expect(pages.parse(pages.build(parsed.id, parsed.page))).toEqual({ ...parsed, page: parsed.page + 0 });
        }
        expect([approval, fleet, snapshotListButtonId.parse(id), fleetListButtonId.parse(id)].filter(Boolean).length).toBeLessThanOrEqual(1);
      }),
      { numRuns: 500 },
    );
  });
});

function host(hostId: string, vms: Array<[string, string[]]>, online = true): HostStatus {
  return {
    hostId, online, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
    capabilities: { externalRevert: false, externalDelete: true }, inventoryAt: null, inventoryError: null,
    concurrency: 4, startedAt: '2026-11-28T00:00:00.000Z', lastSeen: '2026-11-28T00:00:00.000Z', workerVersion: '0.1.0',
    vms: vms.map(([name, snapshots]) => ({ name, uuid: `uuid-${name}`, state: 'running', snapshots: snapshots.map((snapshot) => ({ name: snapshot, location: 'internal' as const })) })),
  }; // prettier-ignore
}

/** Names as libvirt may hold them: hostile text, sometimes longer than Discord's 100. */
const libvirtName = fc.oneof({ weight: 3, arbitrary: hostileText(20) }, { weight: 1, arbitrary: fc.tuple(hostileText(4), fc.integer({ min: 90, max: 200 })).map(([start, length]) => `${start}${'x'.repeat(length)}`.slice(0, length)) });
const inventory = fc
  .array(fc.tuple(hostileText(6), fc.array(fc.tuple(libvirtName, fc.array(libvirtName, { maxLength: 4 })), { maxLength: 6 }), fc.boolean()), { maxLength: 4 })
  .map((hosts) => hosts.map(([hostId, vms, online]) => host(hostId, vms, online)));

describe('autocomplete values', () => {
  it('of any name fit Discord and expand back to the name', () => {
    fc.assert(
      fc.property(libvirtName, fc.array(libvirtName, { maxLength: 10 }), (name, others) => {
        const value = suggestionValueFor(name);
        expect(value.length).toBeLessThanOrEqual(DISCORD_LIMITS.choiceValue);
        expect(expandSuggestedName(value, [...others, name])).toBe(name);
      }),
      { numRuns: RUNS },
    );
  });

  it('typed by anyone come back as typed unless they abbreviate a known name', () => {
    fc.assert(
      fc.property(fc.oneof(hostileText(), fc.tuple(fc.string({ minLength: 80, maxLength: 80 }), hex(10, 10)).map(([prefix, hash]) => `${prefix}…#${hash}`)), fc.array(libvirtName, { maxLength: 10 }), (value, names) => {
        const expanded = expandSuggestedName(value, names);
        expect(expanded === value || names.includes(expanded)).toBe(true);
      }),
      { numRuns: RUNS },
    );
  });

  it('answer any query over any inventory within Discord’s limits, with hidden characters shown in the names', () => {
    fc.assert(
      fc.property(inventory, hostileText(), (hosts, query) => {
        const firstVm = hosts[0]?.vms[0]?.name ?? query;
        const answers = [
          suggestVms(hosts, query),
          suggestHosts(hosts, query),
          suggestHosts(hosts, query, firstVm),
          suggestSnapshots(hosts, firstVm, undefined, query),
          suggestFleetTargets(hosts, query),
          suggestFleetSnapshotNames(hosts, () => true, query),
        ];
        for (const suggestions of answers) {
          expect(suggestions.length).toBeLessThanOrEqual(MAX_SUGGESTIONS);
          const choices = fitChoices(suggestions.map((suggestion) => ({ name: suggestion.label, value: suggestion.value })));
          for (const choice of choices) {
            expect(choice.value.length).toBeLessThanOrEqual(DISCORD_LIMITS.choiceValue);
            expect(choice.name.length).toBeGreaterThan(0);
            expect(choice.name.length).toBeLessThanOrEqual(DISCORD_LIMITS.choiceName);
            expect(findHiddenCharacter(choice.name)).toBeUndefined();
          }
        }
      }),
      { numRuns: 200 },
    );
  });
});
