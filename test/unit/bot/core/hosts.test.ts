import { describe, expect, it } from 'vitest';
import { renderHosts } from '../../../../bot/cli/render-text.js';
import { summarizeHosts } from '../../../../bot/core/hosts.js';
import { heartbeatSchema, judgeHost, type Heartbeat, type HostOverview } from '../../../../shared/hosts.js';

/** A heartbeat as a 0.1.0 worker writes it: none of the fields added for the fleet view. */
const OLD_HEARTBEAT = {
  hostId: 'kvm-a',
  libvirtUri: 'qemu:///system',
  libvirtVersion: '9.0.0',
  qemuVersion: '7.2.0',
  capabilities: { externalRevert: false, externalDelete: true },
  vms: [],
  inventoryAt: '2026-11-28T00:00:00.000Z',
  inventoryError: null,
  concurrency: 4,
  startedAt: '2026-11-28T00:00:00.000Z',
  lastSeen: '2026-11-28T00:00:20.000Z',
  workerVersion: '0.1.0',
};

const beat = (overrides: Partial<Heartbeat> = {}): Heartbeat => ({ ...OLD_HEARTBEAT, inventoryIntervalMs: 1000, lastError: null, ...overrides });

describe('heartbeat compatibility', () => {
  it('still reads the heartbeat of a worker that does not send the new fields', () => {
    const parsed = heartbeatSchema.safeParse(OLD_HEARTBEAT);
    expect(parsed.success).toBe(true);
    expect(parsed.data?.inventoryIntervalMs).toBeUndefined();
    expect(parsed.data?.lastError).toBeUndefined();
  });

  it('reads a last error whose code this bot does not know yet', () => {
    const lastError = { code: 'SOMETHING_NEW', message: 'm', at: '2026-11-28T00:00:10.000Z', jobId: null, kind: null, vm: null };
    expect(heartbeatSchema.parse({ ...OLD_HEARTBEAT, lastError }).lastError).toEqual(lastError);
  });
});

describe('the stale rule', () => {
  it('calls an alive host with a fresh inventory online', () => {
    expect(judgeHost(beat({ inventoryAt: '2026-11-28T00:00:18.000Z' }), true)).toEqual({ state: 'online', staleReason: null });
  });

  it('allows up to three inventory intervals between reads', () => {
    expect(judgeHost(beat({ inventoryAt: '2026-11-28T00:00:17.000Z' }), true).state).toBe('online');
    expect(judgeHost(beat({ inventoryAt: '2026-11-28T00:00:16.900Z' }), true)).toEqual({
      state: 'stale',
      staleReason: 'inventory is 3.1 s old (read every 1 s)',
    });
  });

  it('measures the age on the worker clock (lastSeen − inventoryAt), not the reader’s', () => {
    // Both stamps are an hour behind any reader's clock: the inventory is still fresh.
    expect(judgeHost(beat({ inventoryAt: '2026-11-27T23:00:19.500Z', lastSeen: '2026-11-27T23:00:20.000Z' }), true).state).toBe('online');
  });

  it('calls a host stale at once when its last inventory read failed (libvirt down)', () => {
    expect(judgeHost(beat({ inventoryAt: '2026-11-28T00:00:19.000Z', inventoryError: 'failed to connect to the hypervisor' }), true)).toEqual({
      state: 'stale',
      staleReason: 'inventory read failed: failed to connect to the hypervisor',
    });
  });

  it('calls a host stale when it never read an inventory', () => {
    expect(judgeHost(beat({ inventoryAt: null }), true).staleReason).toBe('no inventory read yet');
  });

  it('assumes the 30 s default interval for a worker that does not report one', () => {
    const old = heartbeatSchema.parse(OLD_HEARTBEAT);
    expect(judgeHost(old, true).state).toBe('online');
    expect(judgeHost({ ...old, lastSeen: '2026-11-28T00:01:31.000Z' }, true).staleReason).toBe('inventory is 91 s old (read every 30 s)');
  });

  it('calls a dead worker offline, whatever its inventory', () => {
    expect(judgeHost(beat({ inventoryError: 'down' }), false)).toEqual({ state: 'offline', staleReason: null });
  });
});

const NOW = Date.parse('2026-11-28T00:10:00.000Z');
const host = (id: string, overrides: Partial<HostOverview> = {}): HostOverview => ({
  ...beat({ hostId: id, lastSeen: '2026-11-28T00:09:58.000Z', inventoryAt: '2026-11-28T00:09:57.500Z' }),
  online: true,
  state: 'online',
  staleReason: null,
  queue: { waiting: 0, delayed: 0, active: 0 },
  ...overrides,
});

describe('summary counts', () => {
  it('partitions the hosts by state and adds up the queues', () => {
    const hosts = [
      host('a', { queue: { waiting: 2, delayed: 1, active: 1 } }),
      host('b', { state: 'stale', queue: null }),
      host('c', { online: false, state: 'offline', queue: { waiting: 4, delayed: 0, active: 0 } }),
    ];
    expect(summarizeHosts(hosts)).toEqual({ total: 3, online: 1, stale: 1, offline: 1, queued: 7, running: 1 });
  });
});

describe('snapctl hosts table', () => {
  it('shows each host, then the counts, why hosts are stale and their last errors (newest first)', () => {
    const hosts = [
      host('kvm-a', { libvirtVersion: '10.0.0', capabilities: { externalRevert: true, externalDelete: true } }),
      host('kvm-b', {
        state: 'stale',
        staleReason: 'inventory read failed: failed to connect to the hypervisor',
        queue: { waiting: 2, delayed: 1, active: 1 },
        lastError: { code: 'HYPERVISOR_UNAVAILABLE', message: 'libvirt is down', at: '2026-11-28T00:09:30.000Z', jobId: '9', kind: 'create', vm: 'web-01' },
      }),
      host('kvm-c', {
        online: false,
        state: 'offline',
        lastSeen: '2026-11-28T00:04:00.000Z',
        queue: null,
        lastError: { code: 'TIMEOUT', message: 'virsh took\ntoo long', at: '2026-11-28T00:02:00.000Z', jobId: null, kind: null, vm: null },
      }),
    ];
    expect(renderHosts({ hosts, summary: summarizeHosts(hosts) }, NOW)).toBe(
      [
        'HOST   STATUS   LAST SEEN  WORKER  LIBVIRT  QEMU   EXT-REVERT  EXT-DELETE  VMS  QUEUED  RUNNING  LAST ERROR',
        'kvm-a  online   2s ago     0.1.0   10.0.0   7.2.0  yes         yes         0    0       0        -',
        'kvm-b  stale    2s ago     0.1.0   9.0.0    7.2.0  no          yes         0    3       1        HYPERVISOR_UNAVAILABLE 30s ago',
        'kvm-c  offline  6m ago     0.1.0   9.0.0    7.2.0  no          yes         0    ?       ?        TIMEOUT 8m ago',
        '',
        '3 host(s): 1 online, 1 stale, 1 offline; 3 job(s) queued, 1 running',
        'kvm-b is stale: inventory read failed: failed to connect to the hypervisor',
        'kvm-b last error 30s ago: HYPERVISOR_UNAVAILABLE (create web-01 job 9): libvirt is down',
        'kvm-c last error 8m ago: TIMEOUT: virsh took ⏎ too long',
      ].join('\n'),
    );
  });
});
