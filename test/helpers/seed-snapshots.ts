import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FakeDomain, FakeVirshHost } from '../fixtures/fake-virsh-host.js';

/**
 * Gives a fake-virsh domain internal snapshots (memory + disk, as `virsh snapshot-create-as
 * --name=X` of a running domain makes them) in one write of the fake's state, instead of
 * one fake virsh process per snapshot (about a second each on a loaded machine).
 *
 * It writes the fake's `domains.json` the way the fake does (a temporary file renamed into
 * place) but without the fake's lock: call it only while nothing else drives this fake
 * host, i.e. before its worker starts. Returns each snapshot's creation time as
 * libvirt reports it (ISO 8601, whole seconds), for jobs that bind to it.
 */
export function seedInternalSnapshots(fake: FakeVirshHost, vm: string, names: readonly string[]): Record<string, string> {
  const file = join(fake.stateDir, 'domains.json');
  const state = JSON.parse(readFileSync(file, 'utf8')) as { nextId: number; domains: Array<FakeDomain & { snapshots: Array<Record<string, unknown>> }> };
  const domain = state.domains.find((candidate) => candidate.name === vm);
  if (!domain) throw new Error(`seedInternalSnapshots: no domain ${vm} on this fake host`);
  const active = domain.state !== 'shut off';
  const creationTime = Math.floor(Date.now() / 1000);
  const createdAt: Record<string, string> = {};
  for (const name of names) {
    if (domain.snapshots.some((snapshot) => snapshot.name === name)) throw new Error(`seedInternalSnapshots: ${vm} already has a snapshot ${name}`);
    domain.snapshots.push({
      name,
      description: null,
      creationTime,
      state: active ? domain.state : 'shutoff',
      location: 'internal',
      memory: active,
      memoryFile: null,
      domainActive: active,
      parent: domain.current,
      chain: [...domain.disk.chain],
      overlay: null,
    });
    domain.current = name;
    createdAt[name] = new Date(creationTime * 1000).toISOString();
  }
  const tmp = `${file}.${process.pid}.seed.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(tmp, file);
  return createdAt;
}
