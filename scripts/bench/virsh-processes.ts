import { performance } from 'node:perf_hooks';
import { createLogger } from '../../shared/logger.js';
import { FakeVirshHost } from '../../test/fixtures/fake-virsh-host.js';
import { VirshHypervisor } from '../../worker/hypervisor/virsh.js';
import { createVirshRunner, virshEnvironment } from '../../worker/hypervisor/virsh-runner.js';
import type { CleanupStack } from './cleanup-stack.js';
import { printHeading, printLine, printTable, progress, type SectionResult } from './report.js';
import { ms } from './stats.js';

/**
 * How many virsh processes one inventory read starts, for hosts of N VMs (the fake virsh
 * logs every process it runs, so the counts are exact and do not depend on the machine's
 * load). The wall time is printed for scale only: each fake process is a Node start-up.
 */

export const INVENTORY_PROCESS_TARGET = 3;

export interface VirshProcessesOptions {
  /** Host sizes to read. */
  sizes: readonly number[];
}

export async function runVirshProcesses(options: VirshProcessesOptions, cleanups: CleanupStack): Promise<SectionResult> {
  printHeading('virsh processes per inventory read');
  const logger = createLogger('bench-virsh-processes', 'warn');
  const rows: string[][] = [];
  const checks: SectionResult['checks'] = [];
  for (const size of options.sizes) {
    progress(`virsh processes: a host with ${size} VMs`);
    const fake = await FakeVirshHost.create();
    cleanups.defer(`fake virsh host of ${size} VMs`, () => fake.dispose());
    for (let index = 0; index < size; index += 1) fake.addDomain({ name: `bench-inventory-${index}`, state: index % 5 === 0 ? 'shut off' : 'running' });
    const hypervisor = new VirshHypervisor({
      virshPath: fake.path,
      uri: 'qemu:///system',
      timeoutMs: 120_000,
      queryTimeoutMs: 120_000,
      logger,
      runner: createVirshRunner(fake.path, { ...virshEnvironment(), ...fake.env }),
    });
    fake.clearCalls();
    const started = performance.now();
    const inventory = await hypervisor.readInventory();
    const wallMs = performance.now() - started;
    if (inventory.length !== size) throw new Error(`the inventory read ${inventory.length} of ${size} VMs`);
    const processes = fake.processes().length;
    const commands = fake.calls().length;
    rows.push([String(size), String(processes), String(commands), String(4 * size + 1), ms(wallMs)]);
    checks.push({
      what: `virsh processes per inventory read, ${size} VMs`,
      target: `≤ ${INVENTORY_PROCESS_TARGET}`,
      measured: String(processes),
      met: processes <= INVENTORY_PROCESS_TARGET,
    });
  }
  printTable(
    'One inventory read (names, states, snapshot names of every VM)',
    ['VMs', 'virsh processes', 'virsh commands run', 'processes before (4N + 1)', 'wall ms (fake virsh)'],
    rows,
  );
  printLine('Commands run in one process share its start-up and its libvirt connection (worker/hypervisor/virsh-script.ts).');
  return { section: 'virsh processes', checks };
}
