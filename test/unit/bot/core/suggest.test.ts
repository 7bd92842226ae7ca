import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SnapbotCore } from '../../../../bot/core/core.js';
import {
  InventoryView,
  MAX_SUGGESTIONS,
  suggestFleetSnapshotNames,
  suggestFleetTargets,
  suggestHosts,
  suggestSnapshots,
  suggestVms,
} from '../../../../bot/core/suggest.js';
import type { HostStatus } from '../../../../shared/hosts.js';

/** The view's reader, counted: the caching is the subject here, not Redis (read for real in the integration tests). */
const readHosts = vi.fn<(core: SnapbotCore) => Promise<HostStatus[]>>();
const viewOf = (core: SnapbotCore, maxAgeMs?: number) => new InventoryView(core, maxAgeMs, () => readHosts(core));

type VmSpec = [name: string, snapshots?: Array<[name: string, location?: 'internal' | 'external']>, state?: string];

function host(hostId: string, vms: VmSpec[], online = true): HostStatus {
  return {
    hostId, online, libvirtUri: 'qemu:///system', libvirtVersion: '9.0.0', qemuVersion: '7.2.0',
    capabilities: { externalRevert: false, externalDelete: true }, inventoryAt: null, inventoryError: null,
    concurrency: 4, startedAt: '2026-11-28T00:00:00.000Z', lastSeen: '2026-11-28T00:00:00.000Z', workerVersion: '0.1.0',
    vms: vms.map(([name, snapshots = [], state = 'running']) => ({
      name, uuid: `uuid-${name}`, state, snapshots: snapshots.map(([snapshot, location = 'internal']) => ({ name: snapshot, location })),
    })),
  }; // prettier-ignore
}

const HOSTS = [
  host('kvm-a', [['web-01', [['nightly'], ['pre-rollout', 'external']]], ['db-01', [['nightly']], 'shut off'], ['api-web', []]]),
  host('kvm-b', [['web-02', [['pre-rollout']]], ['web-01', [['weekly']]]], false),
];

const values = (choices: Array<{ value: string }>) => choices.map((choice) => choice.value);

describe('VM autocomplete', () => {
  it('shows each VM with its host and state, and marks VMs on offline hosts', () => {
    expect(suggestVms(HOSTS, 'db')).toEqual([{ label: 'db-01 · kvm-a (shut off)', value: 'db-01' }]);
    expect(suggestVms(HOSTS, 'web-02')).toEqual([{ label: 'web-02 · kvm-b (host offline)', value: 'web-02' }]);
  });

  it('puts names that start with what was typed first, then the others, each alphabetically', () => {
    expect(suggestVms(HOSTS, 'web').map((choice) => choice.label)).toEqual([
      'web-01 · kvm-a (running)',
      'web-01 · kvm-b (host offline)',
      'web-02 · kvm-b (host offline)',
      'api-web · kvm-a (running)',
    ]);
  });

  it('matches the host id too, ignores case and the blanks around the query', () => {
    expect(values(suggestVms(HOSTS, '  KVM-B '))).toEqual(['web-01', 'web-02']);
    expect(values(suggestVms(HOSTS, 'WEB-02'))).toEqual(['web-02']);
  });

  it('offers every VM, alphabetically, before anything is typed', () => {
    expect(values(suggestVms(HOSTS, ''))).toEqual(['api-web', 'db-01', 'web-01', 'web-01', 'web-02']);
  });

  it('offers nothing when nothing matches', () => {
    expect(suggestVms(HOSTS, 'cache')).toEqual([]);
  });

  it('offers at most 25 choices, the best first', () => {
    const many = [host('kvm-a', Array.from({ length: 40 }, (_, index): VmSpec => [`vm-${String(index).padStart(2, '0')}`]))];
    const choices = suggestVms(many, 'vm');
    expect(MAX_SUGGESTIONS).toBe(25);
    expect(choices).toHaveLength(25);
    expect(choices[0]?.value).toBe('vm-00');
    expect(choices[24]?.value).toBe('vm-24');
  });

  it('cuts a label over 100 characters to 99 and an ellipsis', () => {
    const name = `vm-${'x'.repeat(90)}`; // 93 characters: the label passes 100, the name does not
    const [choice] = suggestVms([host('kvm-a', [[name]])], 'vm-');
    expect(choice?.label).toBe(`${`${name} · kvm-a (running)`.slice(0, 99)}…`);
    expect(choice?.label).toHaveLength(100);
    expect(choice?.value).toBe(name);
  });

  it('keeps a label of exactly 100 characters whole', () => {
    const name = `vm-${'x'.repeat(100 - 3 - ' · kvm-a (running)'.length)}`;
    const [choice] = suggestVms([host('kvm-a', [[name]])], '');
    expect(choice?.label).toBe(`${name} · kvm-a (running)`);
  });
});

describe('host autocomplete', () => {
  it('shows each host as online or offline with its VM count', () => {
    expect(suggestHosts(HOSTS, '')).toEqual([
      { label: 'kvm-a (online, 3 VMs)', value: 'kvm-a' },
      { label: 'kvm-b (offline, 2 VMs)', value: 'kvm-b' },
    ]);
  });

  it('offers only the hosts that have the VM once it is chosen', () => {
    expect(values(suggestHosts(HOSTS, '', 'db-01'))).toEqual(['kvm-a']);
    expect(values(suggestHosts(HOSTS, '', 'web-01'))).toEqual(['kvm-a', 'kvm-b']);
    expect(values(suggestHosts(HOSTS, '', 'gone'))).toEqual([]);
  });

  it('matches what was typed, prefix first, ignoring case and blanks', () => {
    const hosts = [host('lab-kvm', []), host('kvm-z', []), host('kvm-c', [])];
    expect(values(suggestHosts(hosts, ' KVM '))).toEqual(['kvm-c', 'kvm-z', 'lab-kvm']);
    expect(values(suggestHosts(hosts, 'lab'))).toEqual(['lab-kvm']);
  });

  it('offers at most 25 hosts', () => {
    const hosts = Array.from({ length: 30 }, (_, index) => host(`kvm-${String(index).padStart(2, '0')}`, []));
    const choices = suggestHosts(hosts, '');
    expect(choices).toHaveLength(25);
    expect(choices[24]?.value).toBe('kvm-24');
  });
});

describe('snapshot autocomplete', () => {
  it("offers the chosen VM's snapshots with where they are kept", () => {
    expect(suggestSnapshots(HOSTS, 'web-01', 'kvm-a', '')).toEqual([
      { label: 'nightly (internal)', value: 'nightly' },
      { label: 'pre-rollout (external)', value: 'pre-rollout' },
    ]);
  });

  it('looks on every host that has the VM until a host is chosen', () => {
    expect(values(suggestSnapshots(HOSTS, 'web-01', undefined, ''))).toEqual(['nightly', 'pre-rollout', 'weekly']);
    expect(values(suggestSnapshots(HOSTS, 'web-01', 'kvm-b', ''))).toEqual(['weekly']);
  });

  it("never offers another VM's snapshots", () => {
    expect(values(suggestSnapshots(HOSTS, 'db-01', undefined, ''))).toEqual(['nightly']);
    expect(values(suggestSnapshots(HOSTS, 'api-web', undefined, ''))).toEqual([]);
  });

  it('matches what was typed, prefix first, ignoring case and blanks', () => {
    const hosts = [host('kvm-a', [['vm', [['b-pre'], ['pre-b'], ['pre-a'], ['post']]]])];
    expect(values(suggestSnapshots(hosts, 'vm', undefined, ' PRE '))).toEqual(['pre-a', 'pre-b', 'b-pre']);
  });

  it('offers at most 25 snapshots', () => {
    const snapshots = Array.from({ length: 30 }, (_, index): [string] => [`s-${String(index).padStart(2, '0')}`]);
    expect(suggestSnapshots([host('kvm-a', [['vm', snapshots]])], 'vm', undefined, '')).toHaveLength(25);
  });

  it('cuts a long label to 100 characters', () => {
    const name = `s-${'x'.repeat(95)}`; // 97 characters, plus " (internal)"
    const [choice] = suggestSnapshots([host('kvm-a', [['vm', [[name]]]])], 'vm', undefined, '');
    expect(choice?.label).toBe(`${`${name} (internal)`.slice(0, 99)}…`);
  });
});

describe('fleet selector autocomplete, details', () => {
  it('counts every VM for all, and says which hosts are offline', () => {
    expect(suggestFleetTargets(HOSTS, '')).toEqual([
      { label: 'all — every VM (5)', value: 'all' },
      { label: 'api-web — VM', value: 'api-web' },
      { label: 'db-01 — VM', value: 'db-01' },
      { label: 'host:kvm-a — 3 VMs', value: 'host:kvm-a' },
      { label: 'host:kvm-b — 2 VMs, offline', value: 'host:kvm-b' },
      { label: 'web-01 — VM on 2 hosts', value: 'web-01' },
      { label: 'web-02 — VM', value: 'web-02' },
    ]);
  });

  it('puts words that start with what was typed first', () => {
    expect(values(suggestFleetTargets(HOSTS, 'web'))).toEqual(['web-01', 'web-02', 'api-web']);
  });

  it('does not offer all as an exclusion', () => {
    expect(values(suggestFleetTargets(HOSTS, '!'))).toEqual(['!api-web', '!db-01', '!host:kvm-a', '!host:kvm-b', '!web-01', '!web-02']);
    expect(suggestFleetTargets(HOSTS, '!db')).toEqual([{ label: '!db-01 — leave out VM', value: '!db-01' }]);
  });

  it('ignores blanks before the selector and completes after the last blank or comma', () => {
    expect(values(suggestFleetTargets(HOSTS, '   db'))).toEqual(['db-01']);
    expect(values(suggestFleetTargets(HOSTS, 'web-*  db'))).toEqual(['web-*  db-01']);
    expect(values(suggestFleetTargets(HOSTS, 'web-*,db'))).toEqual(['web-*,db-01']);
    expect(values(suggestFleetTargets(HOSTS, 'a b,c db'))).toEqual(['a b,c db-01']);
    expect(values(suggestFleetTargets(HOSTS, 'a,b c,db'))).toEqual(['a,b c,db-01']);
  });

  it('offers at most 25 words', () => {
    const many = [host('kvm-a', Array.from({ length: 30 }, (_, index): VmSpec => [`vm-${String(index).padStart(2, '0')}`]))];
    const choices = suggestFleetTargets(many, 'vm');
    expect(choices).toHaveLength(25);
    expect(choices[24]?.value).toBe('vm-24');
  });

  it('cuts a long label to 100 characters', () => {
    const typed = `${'w'.repeat(90)} db`;
    const [choice] = suggestFleetTargets(HOSTS, typed);
    expect(choice?.value).toBe(`${'w'.repeat(90)} db-01`);
    expect(choice?.label).toBe(`${`${'w'.repeat(90)} db-01 — VM`.slice(0, 99)}…`);
  });
});

describe('fleet snapshot name autocomplete, details', () => {
  const everything = () => true;

  it('counts the VMs holding each name, prefix matches first', () => {
    expect(suggestFleetSnapshotNames(HOSTS, everything, 'roll')).toEqual([{ label: 'pre-rollout (2 VMs)', value: 'pre-rollout' }]);
    expect(suggestFleetSnapshotNames(HOSTS, everything, ' T ')).toEqual([
      { label: 'nightly (2 VMs)', value: 'nightly' },
      { label: 'pre-rollout (2 VMs)', value: 'pre-rollout' },
    ]);
    const hosts = [host('kvm-a', [['vm', [['a-pre'], ['pre-b']]]])];
    expect(values(suggestFleetSnapshotNames(hosts, everything, 'PRE'))).toEqual(['pre-b', 'a-pre']);
  });

  it('looks only at the VMs the selector names', () => {
    expect(suggestFleetSnapshotNames(HOSTS, (hostId) => hostId === 'kvm-b', '')).toEqual([
      { label: 'pre-rollout (1 VM)', value: 'pre-rollout' },
      { label: 'weekly (1 VM)', value: 'weekly' },
    ]);
    expect(suggestFleetSnapshotNames(HOSTS, (_hostId, vm) => vm === 'db-01', '')).toEqual([{ label: 'nightly (1 VM)', value: 'nightly' }]);
  });

  it('offers at most 25 names', () => {
    const snapshots = Array.from({ length: 30 }, (_, index): [string] => [`s-${String(index).padStart(2, '0')}`]);
    expect(suggestFleetSnapshotNames([host('kvm-a', [['vm', snapshots]])], everything, '')).toHaveLength(25);
  });
});

describe('InventoryView', () => {
  const core = {} as SnapbotCore;
  const inventory = (hostId: string) => [host(hostId, [])];
  const settle = () => new Promise((resolve) => setImmediate(resolve));

  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-28T00:00:00.000Z'));
    readHosts.mockReset();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('reads the hosts on first use, then answers from memory for two seconds', async () => {
    readHosts.mockResolvedValue(inventory('first'));
    const view = viewOf(core);
    expect(await view.hosts()).toEqual(inventory('first'));
    expect(readHosts).toHaveBeenCalledWith(core);
    vi.setSystemTime(Date.now() + 2_000);
    expect(await view.hosts()).toEqual(inventory('first'));
    expect(readHosts).toHaveBeenCalledTimes(1);
  });

  it('serves the old copy at once when it is stale, and the fresh one from then on', async () => {
    readHosts.mockResolvedValueOnce(inventory('old')).mockResolvedValueOnce(inventory('new'));
    const view = viewOf(core, 1_000);
    await view.hosts();
    vi.setSystemTime(Date.now() + 1_001);
    expect(await view.hosts()).toEqual(inventory('old'));
    expect(readHosts).toHaveBeenCalledTimes(2);
    await settle();
    expect(await view.hosts()).toEqual(inventory('new'));
    expect(readHosts).toHaveBeenCalledTimes(2);
  });

  it('reads once for keystrokes that arrive while a read is under way', async () => {
    let finish: (hosts: HostStatus[]) => void = () => undefined;
    readHosts.mockReturnValue(new Promise((resolve) => (finish = resolve)));
    const view = viewOf(core);
    const first = view.hosts();
    const second = view.hosts();
    finish(inventory('once'));
    expect(await first).toEqual(inventory('once'));
    expect(await second).toEqual(inventory('once'));
    expect(readHosts).toHaveBeenCalledTimes(1);
  });

  it('reads again once a read has finished and its copy is stale', async () => {
    readHosts.mockResolvedValueOnce(inventory('one')).mockResolvedValueOnce(inventory('two')).mockResolvedValueOnce(inventory('three'));
    const view = viewOf(core, 10);
    await view.hosts();
    vi.setSystemTime(Date.now() + 11);
    await view.hosts();
    await settle();
    vi.setSystemTime(Date.now() + 11);
    expect(await view.hosts()).toEqual(inventory('two'));
    await settle();
    expect(readHosts).toHaveBeenCalledTimes(3);
    expect(await view.hosts()).toEqual(inventory('three'));
  });

  it('fails the first use when the hosts cannot be read', async () => {
    readHosts.mockRejectedValueOnce(new Error('redis down'));
    await expect(viewOf(core).hosts()).rejects.toThrow('redis down');
  });

  it('keeps the old copy when a background read fails, and tries again on the next call', async () => {
    readHosts.mockResolvedValueOnce(inventory('old')).mockRejectedValueOnce(new Error('redis down')).mockResolvedValueOnce(inventory('new'));
    const view = viewOf(core, 1_000);
    await view.hosts();
    vi.setSystemTime(Date.now() + 5_000);
    expect(await view.hosts()).toEqual(inventory('old'));
    await settle();
    expect(await view.hosts()).toEqual(inventory('old'));
    await settle();
    expect(readHosts).toHaveBeenCalledTimes(3);
    expect(await view.hosts()).toEqual(inventory('new'));
  });
});
