import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../shared/logger.js';
import { VirshHypervisor } from '../../worker/hypervisor/virsh.js';
import { createVirshRunner, type VirshRunRequest } from '../../worker/hypervisor/virsh-runner.js';
import { createTinyDomain, destroyTinyDomain, ensureLibvirt, LIBVIRT_E2E_URI, virshRaw, type TinyDomain } from './helpers/libvirt-host.js';

/**
 * The worker's inventory read on the real libvirt + QEMU: a few virsh processes, each
 * running many commands on one command line (worker/hypervisor/virsh-script.ts), must
 * see exactly what single virsh commands see — names (blanks and option-looking ones
 * included), states, and snapshot names with their location — and a create must read its
 * snapshot back in the same process.
 */

const tag = `${process.pid}`;
const names = { running: ` snapbot-e2e-inv ${tag} spaced `, off: `--snapbot-e2e-inv-off-${tag}`, paused: `snapbot-e2e-inv-paused-${tag}` };
const domains: TinyDomain[] = [];
const requests: VirshRunRequest[] = [];
const realRunner = createVirshRunner('virsh');
const hypervisor = new VirshHypervisor({
  virshPath: 'virsh',
  uri: LIBVIRT_E2E_URI,
  timeoutMs: 120_000,
  queryTimeoutMs: 60_000,
  logger: createLogger('e2e-inventory', 'warn'),
  runner: async (request) => {
    requests.push(request);
    return realRunner(request);
  },
});

beforeAll(async () => {
  await ensureLibvirt();
  domains.push(await createTinyDomain(names.running));
  domains.push(await createTinyDomain(names.off, { start: false }));
  const paused = await createTinyDomain(names.paused);
  domains.push(paused);
  expect(virshRaw(['suspend', `--domain=${paused.uuid}`]).code).toBe(0);
}, 600_000);

afterAll(async () => {
  for (const domain of domains) await destroyTinyDomain(domain.uuid);
});

describe('the inventory read on real libvirt', () => {
  it('creates two snapshots, each read back in the create’s own virsh process', async () => {
    const running = domains[0]!;
    requests.length = 0;
    const full = await hypervisor.createSnapshot(running.uuid, { name: "it's full", description: 'two\nlines; # not a comment', mode: 'full' });
    const disk = await hypervisor.createSnapshot(running.uuid, { name: '--disk only', description: '', mode: 'disk-only' });
    expect(requests).toHaveLength(2);
    expect(full).toMatchObject({ name: "it's full", description: 'two\nlines; # not a comment', location: 'internal', current: true, memory: true });
    expect(disk).toMatchObject({ name: '--disk only', location: 'external', current: true, parent: "it's full" });
  });

  it('reads every domain with its state and snapshots in two virsh processes, as single commands see them', async () => {
    requests.length = 0;
    const inventory = await hypervisor.readInventory();
    expect(requests).toHaveLength(2);

    const ours = inventory.filter((vm) => domains.some((domain) => domain.uuid === vm.uuid));
    expect(ours.map(({ name, state }) => ({ name, state })).sort((a, b) => a.name.localeCompare(b.name))).toEqual(
      [
        { name: names.running, state: 'running' },
        { name: names.off, state: 'shut off' },
        { name: names.paused, state: 'paused' },
      ].sort((a, b) => a.name.localeCompare(b.name)),
    );
    const running = ours.find((vm) => vm.name === names.running)!;
    expect(running.snapshots.map(({ name, location }) => ({ name, location })).sort((a, b) => a.name.localeCompare(b.name))).toEqual([
      { name: '--disk only', location: 'external' },
      { name: "it's full", location: 'internal' },
    ]);
    for (const snapshot of running.snapshots) expect(snapshot.createdAt).toMatch(/^\d{4}-\d\d-\d\dT/);

    // Every domain libvirt lists, with the state domstate gives it, also those snapbot did not make.
    const listed = virshRaw(['list', '--all', '--uuid']).stdout.split('\n').filter((line) => line.trim() !== '');
    expect(inventory.map((vm) => vm.uuid).sort()).toEqual([...listed].sort());
    for (const vm of inventory) expect(vm.state).toBe(virshRaw(['domstate', `--domain=${vm.uuid}`]).stdout.trim());
  });

  it('lists the names and states alone in one virsh process', async () => {
    requests.length = 0;
    const listed = await hypervisor.listDomains();
    expect(requests).toHaveLength(1);
    expect(listed.find((vm) => vm.uuid === domains[2]!.uuid)).toEqual({ uuid: domains[2]!.uuid, name: names.paused, state: 'paused' });
  });
});
