import { describe, expect, it } from 'vitest';
import { SnapbotError } from '../../../../shared/errors.js';
import { VirshHypervisor } from '../../../../worker/hypervisor/virsh.js';
import type { VirshRunRequest, VirshRunResult, VirshRunner } from '../../../../worker/hypervisor/virsh-runner.js';
import { LITERAL_NAMES } from '../../../fixtures/names-table.js';

const URI = 'qemu:///system';
const CONNECT = `--connect=${URI}`;
const UUID = 'b84e1ad0-2d70-4bbb-856d-a73dd78e5eff';
const OTHER_UUID = '6f1c2d3e-0000-4bbb-856d-a73dd78e5e00';

type Reply = Partial<VirshRunResult>;

/**
 * virsh's command-string mode as snapbot writes it (see worker/hypervisor/virsh-script.ts):
 * tokens plain or in single quotes (a quote inside as '\\''), separated by spaces,
 * commands by newlines.
 */
function parseScript(script: string): string[][] {
  const commands: string[][] = [[]];
  let token: string | null = null;
  let quoted = false;
  for (let index = 0; index < script.length; index += 1) {
    const char = script[index]!;
    if (quoted) {
      if (char === "'") quoted = false;
      else token += char;
    } else if (char === "'") {
      quoted = true;
      token ??= '';
    } else if (char === '\\') {
      token = (token ?? '') + script[++index];
    } else if (char === ' ' || char === '\n') {
      if (token !== null) commands.at(-1)!.push(token);
      token = null;
      if (char === '\n') commands.push([]);
    } else if (/[A-Za-z0-9_.:=@%+,/-]/.test(char)) {
      token = (token ?? '') + char;
    } else {
      throw new Error(`unexpected unquoted ${JSON.stringify(char)} in a virsh script`);
    }
  }
  if (token !== null) commands.at(-1)!.push(token);
  return commands.filter((command) => command.length > 0);
}

/**
 * A runner that records every command and answers from `reply` (exit 0, empty output by
 * default). A command line of several commands (one argument after --connect) is run the
 * way virsh runs it: every command in turn, `echo` and `echo --err` printing the marks,
 * virsh's newline after each command, the exit status of the last one. `calls` lists each
 * command as if it had run alone; `processes` counts the virsh processes.
 */
function recordingRunner(reply: (args: readonly string[]) => Reply = () => ({})): {
  runner: VirshRunner;
  calls: VirshRunRequest[];
  processes: VirshRunRequest[];
} {
  const calls: VirshRunRequest[] = [];
  const processes: VirshRunRequest[] = [];
  const answer = (args: readonly string[]): VirshRunResult => ({
    exitCode: 0,
    signal: undefined,
    stdout: '',
    stderr: '',
    durationMs: 1,
    timedOut: false,
    ...reply(args),
  });
  const runner: VirshRunner = async (request) => {
    processes.push(request);
    if (request.args.length !== 2 || !/\s/.test(request.args[1]!)) {
      calls.push(request);
      return answer(request.args);
    }
    let stdout = '';
    let stderr = '';
    let last: VirshRunResult = answer([]);
    for (const command of parseScript(request.args[1]!)) {
      if (command[0] === 'echo') {
        if (command[1] === '--err') stderr += `error: ${command.slice(2).join(' ')}\n`;
        else stdout += command.slice(1).join(' ');
        stdout += '\n';
        continue;
      }
      const args = [request.args[0]!, ...command];
      calls.push({ args, timeoutMs: request.timeoutMs });
      last = answer(args);
      if (last.signal !== undefined || last.timedOut || last.spawnError) return last;
      stdout += last.stdout;
      stderr += last.stderr;
      // A reply for a failed command gives no stdout; virsh still prints its newline.
      if (last.exitCode !== 0 && last.stdout === '') stdout += '\n';
    }
    return { ...last, stdout, stderr };
  };
  return { runner, calls, processes };
}

function hypervisor(runner: VirshRunner): VirshHypervisor {
  return new VirshHypervisor({
    virshPath: '/usr/bin/virsh',
    uri: URI,
    timeoutMs: 120_000,
    queryTimeoutMs: 15_000,
    hostId: 'kvm-01',
    runner,
  });
}

function snapshotXml(name: string, creationTime: number): string {
  return `<domainsnapshot>\n  <name>${name}</name>\n  <state>running</state>\n  <creationTime>${creationTime}</creationTime>\n  <memory snapshot='internal'/>\n</domainsnapshot>\n`;
}

const NO_SUCH_SNAPSHOT = (name: string): Reply => ({
  exitCode: 1,
  stderr: `error: Domain snapshot not found: no domain snapshot with matching name '${name}'\n`,
});
const NO_CURRENT: Reply = { exitCode: 1, stderr: `error: domain '${UUID}' has no current snapshot\n` };

describe('VirshHypervisor argv', () => {
  it('creates a disk-only snapshot atomically, every value in --opt=value form, and reads it back in the same process', async () => {
    const { runner, calls, processes } = recordingRunner((args) => (args[1] === 'snapshot-dumpxml' ? { stdout: snapshotXml('--help', 1) } : {}));
    expect(await hypervisor(runner).createSnapshot(UUID, { name: '--help', description: 'before upgrade\n[snapbot job 7]', mode: 'disk-only' })).toMatchObject({
      name: '--help',
      current: true,
    });
    expect(processes).toHaveLength(1);
    expect(calls).toEqual([
      {
        args: [
          CONNECT,
          'snapshot-create-as',
          `--domain=${UUID}`,
          '--name=--help',
          '--description=before upgrade\n[snapbot job 7]',
          '--disk-only',
          '--atomic',
        ],
        timeoutMs: 120_000,
      },
      { args: [CONNECT, 'snapshot-dumpxml', `--domain=${UUID}`, '--snapshotname=--help'], timeoutMs: 120_000 },
    ]);
  });

  it('creates a full snapshot without disk-only flags', async () => {
    const { runner, calls } = recordingRunner((args) => (args[1] === 'snapshot-dumpxml' ? { stdout: snapshotXml('a b', 1) } : {}));
    await hypervisor(runner).createSnapshot(UUID, { name: 'a b', description: '--x', mode: 'full' });
    expect(calls.map((call) => call.args)).toEqual([
      [CONNECT, 'snapshot-create-as', `--domain=${UUID}`, '--name=a b', '--description=--x'],
      [CONNECT, 'snapshot-dumpxml', `--domain=${UUID}`, '--snapshotname=a b'],
    ]);
  });

  it('leaves out an empty description, which virsh would refuse', async () => {
    const { runner, calls } = recordingRunner((args) => (args[1] === 'snapshot-dumpxml' ? { stdout: snapshotXml('5', 1) } : {}));
    await hypervisor(runner).createSnapshot(UUID, { name: '5', description: '', mode: 'full' });
    expect(calls[0]?.args).toEqual([CONNECT, 'snapshot-create-as', `--domain=${UUID}`, '--name=5']);
  });

  it.each(LITERAL_NAMES)('passes the name %j to virsh literally, as part of one argv element', async (name) => {
    const { runner, calls } = recordingRunner((args) =>
      args[1] === 'snapshot-dumpxml' ? { stdout: snapshotXml(name.replaceAll('&', '&amp;').replaceAll('<', '&lt;').replaceAll('>', '&gt;'), 1) } : {},
    );
    const adapter = hypervisor(runner);
    await adapter.createSnapshot(UUID, { name, description: name, mode: 'disk-only' });
    expect((await adapter.snapshotInfo(UUID, name)).name).toBe(name);
    await adapter.revertSnapshot(UUID, name);
    await adapter.deleteSnapshot(UUID, name);
    expect(calls.map((call) => call.args.slice(1))).toEqual([
      ['snapshot-create-as', `--domain=${UUID}`, `--name=${name}`, `--description=${name}`, '--disk-only', '--atomic'],
      ['snapshot-dumpxml', `--domain=${UUID}`, `--snapshotname=${name}`],
      ['snapshot-dumpxml', `--domain=${UUID}`, `--snapshotname=${name}`],
      ['snapshot-current', `--domain=${UUID}`, '--name'],
      ['snapshot-revert', `--domain=${UUID}`, `--snapshotname=${name}`],
      ['snapshot-delete', `--domain=${UUID}`, `--snapshotname=${name}`],
    ]);
  });

  it('reverts and deletes by --snapshotname with the mutation timeout', async () => {
    const { runner, calls } = recordingRunner();
    const adapter = hypervisor(runner);
    await adapter.revertSnapshot(UUID, '<&>');
    await adapter.deleteSnapshot(UUID, '--snapshotname=x');
    expect(calls).toEqual([
      { args: [CONNECT, 'snapshot-revert', `--domain=${UUID}`, '--snapshotname=<&>'], timeoutMs: 120_000 },
      { args: [CONNECT, 'snapshot-delete', `--domain=${UUID}`, '--snapshotname=--snapshotname=x'], timeoutMs: 120_000 },
    ]);
  });

  it('asks for the daemon version with the query timeout', async () => {
    const { runner, calls } = recordingRunner(() => ({
      stdout: 'Using library: libvirt 9.0.0\nRunning hypervisor: QEMU 7.2.0\nRunning against daemon: 9.0.0\n\n',
    }));
    expect(await hypervisor(runner).version()).toEqual({ libvirt: '9.0.0', qemu: '7.2.0' });
    expect(calls).toEqual([{ args: [CONNECT, 'version', '--daemon'], timeoutMs: 15_000 }]);
  });

  it('lists names and states in one virsh process, asking domstate only for a state list cannot filter, and skips a VM that vanished', async () => {
    const CRASHED = '0c0c0c0c-2d70-4bbb-856d-a73dd78e5eff';
    const { runner, calls, processes } = recordingRunner((args) => {
      if (args[1] === 'list' && args[4] === '--name') return { stdout: `${UUID}  lead and two spaces\n${OTHER_UUID} gone\n${CRASHED} 5\n\n` };
      if (args[1] === 'list') return { stdout: args[4] === '--state-shutoff' ? `${UUID}\n\n` : '\n' };
      if (args[1] === 'domstate' && args[2] === `--domain=${CRASHED}`) return { stdout: 'crashed\n\n' };
      return { exitCode: 1, stderr: `error: failed to get domain '${OTHER_UUID}'\n` };
    });
    expect(await hypervisor(runner).listDomains()).toEqual([
      { uuid: UUID, name: ' lead and two spaces', state: 'shut off' },
      { uuid: CRASHED, name: '5', state: 'crashed' },
    ]);
    expect(calls.map((call) => call.args)).toEqual([
      [CONNECT, 'list', '--all', '--uuid', '--name'],
      [CONNECT, 'list', '--all', '--uuid', '--state-running'],
      [CONNECT, 'list', '--all', '--uuid', '--state-paused'],
      [CONNECT, 'list', '--all', '--uuid', '--state-shutoff'],
      [CONNECT, 'domstate', `--domain=${OTHER_UUID}`],
      [CONNECT, 'domstate', `--domain=${CRASHED}`],
    ]);
    expect(processes).toHaveLength(2);
    expect(calls.every((call) => call.timeoutMs === 15_000)).toBe(true);
  });

  it('names and states one domain by UUID', async () => {
    const { runner, calls } = recordingRunner((args) => ({ stdout: args[1] === 'domname' ? 'web-01\n\n' : 'running\n\n' }));
    const adapter = hypervisor(runner);
    expect(await adapter.domainName(UUID)).toBe('web-01');
    expect(await adapter.domainState(UUID)).toBe('running');
    expect(calls.map((call) => call.args)).toEqual([
      [CONNECT, 'domname', `--domain=${UUID}`],
      [CONNECT, 'domstate', `--domain=${UUID}`],
    ]);
  });

  it('reads the disks with domblklist --details and the memory with dominfo, with the query timeout', async () => {
    const { runner, calls } = recordingRunner((args) => ({
      stdout:
        args[1] === 'domblklist'
          ? ' Type   Device   Target   Source\n----------------------------------------------\n file   disk     vda      /var/lib/libvirt/images/web-01.qcow2\n\n'
          : 'Id:             1\nName:           web-01\nMax memory:     4194304 KiB\nUsed memory:    2097152 KiB\nPersistent:     yes\n\n',
    }));
    const adapter = hypervisor(runner);
    expect(await adapter.diskSources(UUID)).toEqual([{ type: 'file', device: 'disk', target: 'vda', source: '/var/lib/libvirt/images/web-01.qcow2' }]);
    expect(await adapter.memoryKiB(UUID)).toBe(2097152);
    expect(calls).toEqual([
      { args: [CONNECT, 'domblklist', `--domain=${UUID}`, '--details'], timeoutMs: 15_000 },
      { args: [CONNECT, 'dominfo', `--domain=${UUID}`], timeoutMs: 15_000 },
    ]);
  });

  it('reports a domain gone before domblklist or dominfo as DOMAIN_NOT_FOUND', async () => {
    const { runner } = recordingRunner(() => ({ exitCode: 1, stdout: '\n', stderr: `error: failed to get domain '${UUID}'\n` }));
    const adapter = hypervisor(runner);
    await expect(adapter.diskSources(UUID)).rejects.toMatchObject({ code: 'DOMAIN_NOT_FOUND' });
    await expect(adapter.memoryKiB(UUID)).rejects.toMatchObject({ code: 'DOMAIN_NOT_FOUND' });
  });

  it('lists snapshots newest first, marks the current one and skips one deleted meanwhile', async () => {
    const { runner, calls } = recordingRunner((args) => {
      switch (args[1]) {
        case 'snapshot-list':
          return { stdout: '--help\n007\ngone\nolder\n\n' };
        case 'snapshot-current':
          return { stdout: '007\n' };
        default: {
          const name = String(args[3]).slice('--snapshotname='.length);
          if (name === 'gone') return NO_SUCH_SNAPSHOT(name);
          return { stdout: snapshotXml(name, name === 'older' ? 100 : 200) };
        }
      }
    });
    const snapshots = await hypervisor(runner).listSnapshots(UUID);
    expect(snapshots.map((snapshot) => [snapshot.name, snapshot.current])).toEqual([
      ['--help', false],
      ['007', true],
      ['older', false],
    ]);
    expect(calls.map((call) => call.args)).toEqual(
      expect.arrayContaining([
        [CONNECT, 'snapshot-list', `--domain=${UUID}`, '--name'],
        [CONNECT, 'snapshot-current', `--domain=${UUID}`, '--name'],
        [CONNECT, 'snapshot-dumpxml', `--domain=${UUID}`, '--snapshotname=--help'],
        [CONNECT, 'snapshot-dumpxml', `--domain=${UUID}`, '--snapshotname=007'],
        [CONNECT, 'snapshot-dumpxml', `--domain=${UUID}`, '--snapshotname=gone'],
        [CONNECT, 'snapshot-dumpxml', `--domain=${UUID}`, '--snapshotname=older'],
      ]),
    );
    expect(calls).toHaveLength(6);
  });

  it('orders snapshots taken within one second child before parent, then by name', async () => {
    const tree: Record<string, string | null> = { root: null, 'z-child': 'root', 'a-grandchild': 'z-child', 'b-sibling': 'root' };
    const { runner } = recordingRunner((args) => {
      if (args[1] === 'snapshot-list') return { stdout: `${Object.keys(tree).sort().join('\n')}\n\n` };
      if (args[1] === 'snapshot-current') return NO_CURRENT;
      const name = String(args[3]).slice('--snapshotname='.length);
      const parent = tree[name];
      const xml = snapshotXml(name, 1000);
      return { stdout: parent ? xml.replace('<state>', `<parent>\n    <name>${parent}</name>\n  </parent>\n  <state>`) : xml };
    });
    const snapshots = await hypervisor(runner).listSnapshots(UUID);
    expect(snapshots.map((snapshot) => snapshot.name)).toEqual(['a-grandchild', 'b-sibling', 'z-child', 'root']);
  });

  it('reads "no current snapshot" as none being current', async () => {
    const { runner } = recordingRunner((args) => (args[1] === 'snapshot-current' ? NO_CURRENT : { stdout: snapshotXml('s', 1) }));
    expect(await hypervisor(runner).snapshotInfo(UUID, 's')).toMatchObject({ name: 's', current: false });
  });

  it('reports a missing snapshot from snapshotInfo as SNAPSHOT_NOT_FOUND', async () => {
    const { runner } = recordingRunner((args) => (args[1] === 'snapshot-current' ? NO_CURRENT : NO_SUCH_SNAPSHOT('x')));
    await expect(hypervisor(runner).snapshotInfo(UUID, 'x')).rejects.toMatchObject({ code: 'SNAPSHOT_NOT_FOUND' });
  });

  it('lists any number of snapshots in two virsh processes', async () => {
    const names = Array.from({ length: 20 }, (_, index) => `s${index}`);
    const { runner, processes } = recordingRunner((args) =>
      args[1] === 'snapshot-list'
        ? { stdout: `${names.join('\n')}\n\n` }
        : args[1] === 'snapshot-current'
          ? { stdout: 's0\n' }
          : { stdout: snapshotXml(String(args[3]).slice('--snapshotname='.length), 1) },
    );
    expect(await hypervisor(runner).listSnapshots(UUID)).toHaveLength(20);
    expect(processes).toHaveLength(2);
  });
});

describe('VirshHypervisor with a virsh that has no echo --err', () => {
  it('runs nothing of a refused command line twice: one process per command from then on', async () => {
    let lines = 0;
    const { runner, calls, processes } = recordingRunner((args) => {
      if (args[1] === 'snapshot-dumpxml') return { stdout: snapshotXml('s', 1) };
      return {};
    });
    // What such a virsh says to a line that uses `echo --err`: it parses the whole line first, so runs none of it.
    const oldVirsh: VirshRunner = async (request) => {
      if (request.args.length === 2 && /\s/.test(request.args[1]!)) {
        lines += 1;
        return { exitCode: 1, signal: undefined, stdout: '', stderr: "error: command 'echo' doesn't support option --err\n", durationMs: 1, timedOut: false };
      }
      return runner(request);
    };
    const adapter = hypervisor(oldVirsh);
    expect(await adapter.createSnapshot(UUID, { name: 's', description: 'd', mode: 'disk-only' })).toMatchObject({ name: 's', current: true });
    expect(await adapter.createSnapshot(UUID, { name: 's', description: 'd', mode: 'disk-only' })).toMatchObject({ name: 's' });
    expect(lines).toBe(1);
    expect(calls.map((call) => call.args[1])).toEqual(['snapshot-create-as', 'snapshot-dumpxml', 'snapshot-create-as', 'snapshot-dumpxml']);
    expect(processes).toHaveLength(4);
  });
});

describe('VirshHypervisor failures', () => {
  it('throws the classified error with argv, exit code, stderr and duration in its detail', async () => {
    const stderr = "error: Domain snapshot not found: no domain snapshot with matching name 'pre-upgrade'\n";
    const { runner } = recordingRunner(() => ({ exitCode: 1, stderr, durationMs: 42 }));
    const error = await hypervisor(runner)
      .revertSnapshot(UUID, 'pre-upgrade')
      .catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(SnapbotError);
    expect(error).toMatchObject({
      code: 'SNAPSHOT_NOT_FOUND',
      permanent: true,
      message: `Snapshot 'pre-upgrade' not found on VM ${UUID} on host kvm-01 (virsh: error: Domain snapshot not found: no domain snapshot with matching name 'pre-upgrade')`,
      detail: {
        argv: ['/usr/bin/virsh', CONNECT, 'snapshot-revert', `--domain=${UUID}`, '--snapshotname=pre-upgrade'],
        exitCode: 1,
        stderr,
        durationMs: 42,
        timedOut: false,
      },
    });
  });

  it('names the VM by the name it had in the last listing', async () => {
    const { runner } = recordingRunner((args) => {
      if (args[1] === 'list') return { stdout: args[4] === '--name' ? `${UUID} web-01\n\n` : args[4] === '--state-running' ? `${UUID}\n\n` : '\n' };
      return { exitCode: 1, stderr: 'error: operation failed: domain moment s already exists\n' };
    });
    const adapter = hypervisor(runner);
    await adapter.listDomains();
    await expect(adapter.createSnapshot(UUID, { name: 's', description: 'd', mode: 'full' })).rejects.toMatchObject({
      code: 'SNAPSHOT_EXISTS',
      message: "Snapshot 's' already exists on VM web-01 on host kvm-01 (virsh: error: operation failed: domain moment s already exists)",
    });
  });

  it('turns a timeout into a permanent TIMEOUT', async () => {
    const { runner } = recordingRunner(() => ({ exitCode: undefined, signal: 'SIGKILL', timedOut: true, durationMs: 120_000 }));
    await expect(hypervisor(runner).deleteSnapshot(UUID, 's')).rejects.toMatchObject({
      code: 'TIMEOUT',
      permanent: true,
      message: `virsh snapshot-delete for VM ${UUID} on host kvm-01 did not finish within 120 s and was killed`,
      detail: { timedOut: true, durationMs: 120_000 },
    });
  });

  it('turns a virsh killed by a signal into a retryable INTERNAL error', async () => {
    const { runner } = recordingRunner(() => ({ exitCode: undefined, signal: 'SIGSEGV' }));
    await expect(hypervisor(runner).domainState(UUID)).rejects.toMatchObject({
      code: 'INTERNAL',
      permanent: false,
      message: `virsh domstate for VM ${UUID} on host kvm-01 was killed by SIGSEGV`,
    });
  });

  it('names VIRSH_PATH when virsh is missing', async () => {
    const { runner } = recordingRunner(() => ({
      exitCode: undefined,
      spawnError: { code: 'ENOENT', message: 'spawn /usr/bin/virsh ENOENT' },
    }));
    await expect(hypervisor(runner).version()).rejects.toMatchObject({
      code: 'HYPERVISOR_UNAVAILABLE',
      message: 'virsh was not found at VIRSH_PATH=/usr/bin/virsh on host kvm-01',
    });
  });
});
