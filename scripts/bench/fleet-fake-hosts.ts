import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CleanupStack } from './cleanup-stack.js';
import { PROJECT_ROOT } from './processes.js';

/**
 * Simulated KVM hosts for the fleet benchmark, driven by `scripts/bench/fast-virsh.sh`
 * (a POSIX sh fake virsh, ~1 ms per call instead of the ~100+ ms of CPU of the Node
 * fake in test/fixtures). Each host is a directory whose `virsh` is a symlink to the
 * script; the script finds its state from the path it was started by, so twenty
 * workers in one process (one environment) still reach twenty different hosts.
 */

export const FAST_VIRSH_SCRIPT = join(PROJECT_ROOT, 'scripts', 'bench', 'fast-virsh.sh');

/** Which calls sleep the latency: every virsh call, or only the snapshot itself. */
export type LatencyScope = 'all' | 'snapshot-create-as';

export interface FastFakeVm {
  uuid: string;
  name: string;
}

/** One logged fake virsh call: the subcommand and its --domain (empty when it has none). */
export interface FastFakeCall {
  subcommand: string;
  domain: string;
}

export class FastFakeHost {
  readonly virshPath: string;

  private constructor(
    readonly hostId: string,
    readonly dir: string,
    readonly vms: readonly FastFakeVm[],
  ) {
    this.virshPath = join(dir, 'virsh');
  }

  /** Lays out a host of `vmCount` running domains, no snapshots, no latency. */
  static create(root: string, hostIndex: number, hostId: string, vmCount: number): FastFakeHost {
    const dir = join(root, hostId);
    mkdirSync(join(dir, 'dom'), { recursive: true });
    mkdirSync(join(dir, 'by-name'));
    symlinkSync(FAST_VIRSH_SCRIPT, join(dir, 'virsh'));
    const vms: FastFakeVm[] = [];
    for (let index = 0; index < vmCount; index += 1) {
      // Fixed UUIDs (host and VM number in hex) keep runs comparable and logs readable.
      const uuid = `5eed${hostIndex.toString(16).padStart(4, '0')}-0000-4000-8000-${(index + 1).toString(16).padStart(12, '0')}`;
      const name = `vm-${String(hostIndex).padStart(2, '0')}-${String(index).padStart(3, '0')}`;
      const vmDir = join(dir, 'dom', uuid);
      mkdirSync(join(vmDir, 'snap'), { recursive: true });
      writeFileSync(join(vmDir, 'name'), `${name}\n`);
      writeFileSync(join(vmDir, 'id'), `${index + 1}\n`);
      writeFileSync(join(dir, 'by-name', name), `${uuid}\n`);
      vms.push({ uuid, name });
    }
    writeFileSync(join(dir, 'domains'), vms.map((vm) => `${vm.uuid}\n`).join(''));
    writeFileSync(join(dir, 'calls.log'), '');
    const host = new FastFakeHost(hostId, dir, vms);
    host.setLatency(0, 'all');
    return host;
  }

  /** Takes effect from the next call (every call reads the config afresh). */
  setLatency(latencyMs: number, scope: LatencyScope): void {
    const seconds = latencyMs === 0 ? '0' : (latencyMs / 1000).toFixed(3);
    const tmp = join(this.dir, `config.${process.pid}.tmp`);
    writeFileSync(tmp, `LATENCY_S=${seconds}\nLATENCY_ON=${scope}\n`);
    // Renamed into place: a call starting meanwhile reads the old file or the new one, never half.
    renameSync(tmp, join(this.dir, 'config'));
  }

  calls(): FastFakeCall[] {
    return readFileSync(join(this.dir, 'calls.log'), 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => {
        const space = line.indexOf(' ');
        return { subcommand: line.slice(0, space), domain: line.slice(space + 1) };
      });
  }

  /** Lines in the call log so far (cheap enough to poll for quiet). */
  callCount(): number {
    const text = readFileSync(join(this.dir, 'calls.log'), 'utf8');
    let count = 0;
    for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', index + 1)) count += 1;
    return count;
  }

  clearCalls(): void {
    writeFileSync(join(this.dir, 'calls.log'), '');
  }
}

/** `hostCount` hosts of `vmsPerHost` VMs each under one temporary directory, removed at cleanup. */
export function createFastFakeFleet(cleanups: CleanupStack, label: string, hostCount: number, vmsPerHost: number): { root: string; hosts: FastFakeHost[] } {
  const root = mkdtempSync(join(tmpdir(), `snapbot-bench-${label}-`));
  cleanups.defer(`fast fake hosts (${label})`, () => rmSync(root, { recursive: true, force: true }));
  const hosts = Array.from({ length: hostCount }, (_, index) =>
    FastFakeHost.create(root, index + 1, `bench-kvm-${String(index + 1).padStart(2, '0')}`, vmsPerHost),
  );
  return { root, hosts };
}
