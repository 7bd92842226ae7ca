import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../shared/errors.js';
import { createLogger } from '../../../shared/logger.js';
import { DomainWatch, movesNames, parseLifecycleEvent, WATCH_TIMED_OUT, type LifecycleWatcherProcess } from '../../../worker/domain-watch.js';
import type { DomainSummary, Hypervisor, InventoryDomain } from '../../../worker/hypervisor/hypervisor.js';
import { HostInventory } from '../../../worker/inventory.js';

/**
 * The name check that libvirt's lifecycle events let a job skip: when it may be skipped
 * (the watcher surely listening, no event that can move a name since the name was read),
 * and that anything else (an event, the watcher gone, a read overlapping an event) makes
 * the worker ask libvirt again, so a renamed or replaced VM is never acted on by its old name.
 */
const logger = createLogger('test', 'silent');
const tick = (ms = 5) => new Promise((resolve) => setTimeout(resolve, ms));

/** A watcher process the test drives: what it prints, and when it exits. */
class ScriptedWatcher implements LifecycleWatcherProcess {
  private lines: Array<(line: string) => void> = [];
  private exits: Array<(stderr: string) => void> = [];
  stopped = false;
  constructor(readonly readyLine: string) {}
  onLine(listener: (line: string) => void): void {
    this.lines.push(listener);
  }
  onExit(listener: (stderr: string) => void): void {
    this.exits.push(listener);
  }
  stop(): void {
    this.stopped = true;
  }
  print(line: string): void {
    for (const listener of this.lines) listener(line);
  }
  ready(): void {
    this.print(this.readyLine);
  }
  exit(stderr = ''): void {
    for (const listener of this.exits) listener(stderr);
  }
}

function watchWithScript(options: { restartDelayMs?: number } = {}) {
  const started: ScriptedWatcher[] = [];
  const watch = new DomainWatch({
    start: (readyLine) => {
      const watcher = new ScriptedWatcher(readyLine);
      started.push(watcher);
      return watcher;
    },
    logger,
    registrationGraceMs: 0,
    restartDelayMs: options.restartDelayMs ?? 1,
  });
  const current = () => started.at(-1)!;
  return { watch, started, current };
}

/** libvirt's domains as a table the test changes, and the virsh calls the inventory made. */
function tableHypervisor(domains: DomainSummary[]) {
  const calls: string[] = [];
  let onRead: (() => void) | undefined;
  const find = (uuid: string) => {
    const domain = domains.find((candidate) => candidate.uuid === uuid);
    if (!domain) throw new SnapbotError('DOMAIN_NOT_FOUND', `no domain ${uuid}`);
    return domain;
  };
  const hypervisor = {
    async readInventory(): Promise<InventoryDomain[]> {
      calls.push('inventory');
      const snapshot = domains.map((domain) => ({ ...domain, snapshots: [] }));
      onRead?.();
      return snapshot;
    },
    async listDomains(): Promise<DomainSummary[]> {
      calls.push('list');
      return domains.map((domain) => ({ ...domain }));
    },
    async domainName(uuid: string): Promise<string> {
      calls.push(`domname ${uuid}`);
      return find(uuid).name;
    },
  } as unknown as Hypervisor;
  return { hypervisor, calls, domains, duringRead: (action: () => void) => (onRead = action) };
}

const A = '00000000-0000-4000-8000-00000000000a';
const B = '00000000-0000-4000-8000-00000000000b';

describe('parseLifecycleEvent', () => {
  it("reads virsh 9.0's lines, with or without --timestamp, whatever the name holds", () => {
    expect(parseLifecycleEvent("event 'lifecycle' for domain 'web-01': Defined Renamed")).toEqual({ domain: 'web-01', event: 'Defined', detail: 'Renamed' });
    expect(parseLifecycleEvent("2026-11-30 08:04:05.894+0000: event 'lifecycle' for domain 'evtest-1': Undefined Renamed")).toEqual({
      domain: 'evtest-1',
      event: 'Undefined',
      detail: 'Renamed',
    });
    expect(parseLifecycleEvent("event 'lifecycle' for domain 'it's: a trap': Stopped Destroyed")).toEqual({ domain: "it's: a trap", event: 'Stopped', detail: 'Destroyed' });
    expect(parseLifecycleEvent('qemu:///system')).toBeNull();
    expect(parseLifecycleEvent('')).toBeNull();
    expect(parseLifecycleEvent("event 'reboot' for domain 'web-01'")).toBeNull();
  });

  it('counts the events that can move a name, and not those that keep it', () => {
    const moves = (event: string, detail: string) => movesNames({ domain: 'x', event, detail });
    expect(moves('Defined', 'Added')).toBe(true);
    expect(moves('Defined', 'Renamed')).toBe(true);
    expect(moves('Defined', 'Snapshot')).toBe(true);
    expect(moves('Undefined', 'Removed')).toBe(true);
    expect(moves('Undefined', 'Renamed')).toBe(true);
    expect(moves('Started', 'Booted')).toBe(true);
    expect(moves('Stopped', 'Destroyed')).toBe(true);
    expect(moves('Defined', 'Updated')).toBe(false);
    expect(moves('Suspended', 'Paused')).toBe(false);
    expect(moves('Resumed', 'Unpaused')).toBe(false);
  });
});

describe('DomainWatch', () => {
  it('trusts nothing until the watcher is surely listening, then nothing read before an event', async () => {
    const { watch, current } = watchWithScript();
    watch.start();
    expect(watch.stamp()).toBeNull();
    current().print('qemu:///system');
    await tick();
    expect(watch.stamp()).toBeNull();
    current().ready();
    await tick();
    const stamp = watch.stamp();
    expect(stamp).not.toBeNull();
    expect(watch.holds(stamp)).toBe(true);
    current().print("event 'lifecycle' for domain 'web-01': Defined Updated");
    current().print("event 'lifecycle' for domain 'web-01': Suspended Paused");
    expect(watch.holds(stamp)).toBe(true);
    current().print("event 'lifecycle' for domain 'web-01': Undefined Renamed");
    expect(watch.holds(stamp)).toBe(false);
    expect(watch.holds(watch.stamp())).toBe(true);
    expect(watch.holds(null)).toBe(false);
    expect(watch.holds(undefined)).toBe(false);
    watch.stop();
  });

  it('stops trusting when the watcher exits, restarts it, and trusts only what is read after it listens again', async () => {
    const { watch, started, current } = watchWithScript();
    watch.start();
    current().ready();
    await tick();
    const before = watch.stamp();
    current().exit('error: Disconnected from qemu:///system due to end of file\n');
    expect(watch.holds(before)).toBe(false);
    expect(watch.stamp()).toBeNull();
    await tick(20);
    expect(started).toHaveLength(2);
    expect(watch.stamp()).toBeNull();
    current().ready();
    await tick();
    expect(watch.holds(before)).toBe(false);
    expect(watch.holds(watch.stamp())).toBe(true);
    watch.stop();
    expect(current().stopped).toBe(true);
    expect(watch.stamp()).toBeNull();
  });

  it("replaces a watcher whose lifetime is up at once, without counting it a failure", async () => {
    // A restart delay no test waits for: only a planned replacement can start the second one.
    const { watch, started, current } = watchWithScript({ restartDelayMs: 60_000 });
    watch.start();
    current().ready();
    await tick();
    const stamp = watch.stamp();
    current().print(WATCH_TIMED_OUT);
    current().print('events received: 0');
    current().exit('');
    expect(started).toHaveLength(2);
    expect(watch.holds(stamp)).toBe(false);
    current().ready();
    await tick();
    expect(watch.holds(watch.stamp())).toBe(true);
    // A watcher that says it timed out but exits with an error is a failure: restarted after the delay.
    current().print(WATCH_TIMED_OUT);
    current().exit('error: Disconnected from qemu:///system due to end of file\n');
    await tick(20);
    expect(started).toHaveLength(2);
    watch.stop();
  });

  it('gives up for good on a virsh without `event`, and restarts nothing after stop', async () => {
    const { watch, started, current } = watchWithScript();
    watch.start();
    current().exit("error: unknown command: 'event'\n");
    await tick(20);
    expect(started).toHaveLength(1);
    expect(watch.stamp()).toBeNull();

    const second = watchWithScript();
    second.watch.start();
    second.watch.stop();
    second.current().exit('');
    await tick(20);
    expect(second.started).toHaveLength(1);
  });

  it('ignores an exit or a ready line of a watcher it has already replaced', async () => {
    const { watch, started, current } = watchWithScript();
    watch.start();
    const first = current();
    first.exit('boom');
    await tick(20);
    expect(started).toHaveLength(2);
    current().ready();
    await tick();
    const stamp = watch.stamp();
    first.ready();
    first.exit('late');
    await tick(20);
    expect(watch.holds(stamp)).toBe(true);
    expect(started).toHaveLength(2);
    watch.stop();
  });
});

describe('HostInventory with the watch', () => {
  async function listening() {
    const script = watchWithScript();
    script.watch.start();
    script.current().ready();
    await tick();
    return script;
  }

  it('skips the name check while no name moved, and checks again after an event', async () => {
    const { watch, current } = await listening();
    const host = tableHypervisor([
      { uuid: A, name: 'web-01', state: 'running' },
      { uuid: B, name: 'db-01', state: 'running' },
    ]);
    const inventory = new HostInventory(host.hypervisor, logger, watch);
    await inventory.refreshAll();
    host.calls.length = 0;

    expect(await inventory.resolveVm('web-01', A)).toEqual({ uuid: A, name: 'web-01' });
    expect(await inventory.resolveVm('db-01', undefined)).toEqual({ uuid: B, name: 'db-01' });
    expect(host.calls).toEqual([]);

    // web-01 is renamed and db-01 takes its name; libvirt says so.
    host.domains[0]!.name = 'web-01-old';
    host.domains[1]!.name = 'web-01';
    current().print("event 'lifecycle' for domain 'web-01': Undefined Renamed");
    // The job asked for web-01 as the requester saw it (UUID A): refused, nothing done.
    await expect(inventory.resolveVm('web-01', A)).rejects.toMatchObject({ code: 'DOMAIN_NOT_FOUND', message: expect.stringMatching(/was replaced/) });
    expect(host.calls).toEqual([`domname ${A}`, 'list']);
    // Without an expected UUID, the name is what libvirt says now.
    expect(await inventory.resolveVm('web-01', undefined)).toEqual({ uuid: B, name: 'web-01' });
    watch.stop();
  });

  it('does not trust a read that an event overlapped', async () => {
    const { watch, current } = await listening();
    const host = tableHypervisor([{ uuid: A, name: 'web-01', state: 'running' }]);
    const inventory = new HostInventory(host.hypervisor, logger, watch);
    // The rename lands while the inventory is being read: the read may show either side of it.
    host.duringRead(() => current().print("event 'lifecycle' for domain 'web-01': Defined Renamed"));
    await inventory.refreshAll();
    host.calls.length = 0;
    await inventory.resolveVm('web-01', A);
    expect(host.calls).toEqual([`domname ${A}`]);
    // That check read the name again with nothing moving: the next job trusts it.
    await inventory.resolveVm('web-01', A);
    expect(host.calls).toEqual([`domname ${A}`]);
    watch.stop();
  });

  it('checks every time without a watch, with a watch not yet listening, or with one that stopped', async () => {
    const host = tableHypervisor([{ uuid: A, name: 'web-01', state: 'running' }]);
    const without = new HostInventory(host.hypervisor, logger, null);
    await without.refreshAll();
    await without.resolveVm('web-01', A);
    await without.resolveVm('web-01', A);
    expect(host.calls.filter((call) => call.startsWith('domname'))).toHaveLength(2);

    const notYet = watchWithScript();
    notYet.watch.start();
    const early = new HostInventory(host.hypervisor, logger, notYet.watch);
    host.calls.length = 0;
    await early.refreshAll();
    await early.resolveVm('web-01', A);
    expect(host.calls.filter((call) => call.startsWith('domname'))).toHaveLength(1);

    const { watch, current } = await listening();
    const stopped = new HostInventory(host.hypervisor, logger, watch);
    await stopped.refreshAll();
    current().exit('error: Disconnected from qemu:///system due to end of file\n');
    host.calls.length = 0;
    await stopped.resolveVm('web-01', A);
    expect(host.calls).toEqual([`domname ${A}`]);
    notYet.watch.stop();
    watch.stop();
  });

  it('finds a VM that vanished without waiting for the next refresh', async () => {
    const { watch, current } = await listening();
    const host = tableHypervisor([{ uuid: A, name: 'web-01', state: 'running' }]);
    const inventory = new HostInventory(host.hypervisor, logger, watch);
    await inventory.refreshAll();
    host.domains.splice(0, 1);
    current().print("event 'lifecycle' for domain 'web-01': Undefined Removed");
    await expect(inventory.resolveVm('web-01', A)).rejects.toMatchObject({ code: 'DOMAIN_NOT_FOUND', message: "No VM named 'web-01' on this host." });
    watch.stop();
  });
});
