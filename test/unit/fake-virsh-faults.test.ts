import { execa } from 'execa';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FakeVirshHost } from '../fixtures/fake-virsh-host.js';

/**
 * The fault kinds the exactly-once tests use: a worker killed right after virsh
 * succeeded (killParent), and libvirt finishing while virsh hangs (hang 'after'); and the
 * host's virsh working in the worker's minimal environment.
 */
let host: FakeVirshHost;
let uuid: string;
const URI = '--connect=qemu:///system';

beforeEach(async () => {
  host = await FakeVirshHost.create();
  uuid = host.addDomain({ name: 'vm-f' }).uuid;
});

afterEach(async () => {
  await host.dispose();
});

describe('fake virsh faults for exactly-once tests', () => {
  it('killParent: acts, SIGKILLs the process that ran it, and itself finishes normally', async () => {
    host.setFaults([{ match: { subcommand: 'snapshot-create-as' }, killParent: true, times: 1 }]);
    // sh is the parent here (two commands, so it cannot exec virsh in its own place).
    const parent = await execa('sh', ['-c', `"$0" ${URI} snapshot-create-as --domain=${uuid} --name=s1 > "$1"; sleep 10`, host.path, `${host.stateDir}/out`], {
      reject: false,
      timeout: 8_000,
    });
    expect(parent.signal).toBe('SIGKILL');
    expect(parent.timedOut).toBe(false);
    expect(host.domain(uuid).snapshots.map((snapshot) => snapshot.name)).toEqual(['s1']);
    // The rule fired once: the next call runs in peace.
    const next = await execa(host.path, [URI, 'snapshot-create-as', `--domain=${uuid}`, '--name=s2'], { reject: false });
    expect(next.exitCode).toBe(0);
  });

  it("hang 'after': the change is made, then virsh hangs until it is killed", async () => {
    await execa(host.path, [URI, 'snapshot-create-as', `--domain=${uuid}`, '--name=doomed']);
    host.setFaults([{ match: { subcommand: 'snapshot-delete' }, hang: 'after', times: 1 }]);
    const result = await execa(host.path, [URI, 'snapshot-delete', `--domain=${uuid}`, '--snapshotname=doomed'], { reject: false, timeout: 1_500 });
    expect(result.timedOut).toBe(true);
    expect(host.domain(uuid).snapshots).toEqual([]);
  });

  it('works with no environment at all: the host path defaults FAKE_VIRSH_STATE to its own directory', async () => {
    const result = await execa(host.path, [URI, 'domstate', `--domain=${uuid}`], { env: { PATH: '/usr/bin:/bin' }, extendEnv: false, reject: false });
    expect(result.stdout.trim()).toBe('running');
  });
});
