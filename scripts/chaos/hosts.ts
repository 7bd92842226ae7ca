import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { FakeVirshHost, type FakeVirshFault } from '../../test/fixtures/fake-virsh-host.js';

/**
 * A simulated KVM host for the chaos run: the tests' fake virsh (its state directory,
 * fault injection and `calls.jsonl`), behind a small sh wrapper that also records each
 * call's exit status. The fake logs a call when it starts; the wrapper logs how it ended,
 * so "at most one successful snapshot-create-as per VM and name" is read from what
 * virsh answered, not inferred. A call killed with its process group (the worker's
 * VIRSH_TIMEOUT_MS) leaves no exit record: it did not succeed as far as the worker knew.
 */

const FIELD = '\x1f';
const RECORD = '\x1e';

export interface VirshExit {
  code: number;
  argv: string[];
}

export interface VmRef {
  name: string;
  uuid: string;
}

export class ChaosHost {
  /** What the worker runs as VIRSH_PATH. */
  readonly virshPath: string;
  private readonly exitLog: string;

  private constructor(
    readonly hostId: string,
    readonly fake: FakeVirshHost,
    readonly vms: VmRef[],
  ) {
    this.virshPath = join(fake.stateDir, 'virsh-recorded');
    this.exitLog = join(fake.stateDir, 'exits.log');
    writeFileSync(this.exitLog, '');
    writeFileSync(
      this.virshPath,
      [
        '#!/bin/sh',
        `${shellQuote(fake.path)} "$@"`,
        'code=$?',
        `us=$(printf '\\037')`,
        'line=$code; for arg in "$@"; do line="$line$us$arg"; done',
        // One printf, one write(2) to an O_APPEND file: records of concurrent calls do not interleave.
        `printf '%s\\036' "$line" >> ${shellQuote(this.exitLog)}`,
        // A token for the VM: SIGKILL the worker right after its snapshot-create-as succeeded
        // (once: only one rm wins). The fake's own killParent would hit this script instead.
        'if [ "$code" -eq 0 ]; then',
        '  for arg in "$@"; do case "$arg" in --domain=*) domain="${arg#--domain=}" ;; esac; done',
        '  case " $* " in *" snapshot-create-as "*)',
        `    token=${shellQuote(join(fake.stateDir, 'kill-worker-after-create.'))}"$domain"`,
        '    if [ -e "$token" ] && rm "$token" 2>/dev/null; then kill -9 "$PPID"; fi ;;',
        '  esac',
        'fi',
        'exit $code',
        '',
      ].join('\n'),
      { mode: 0o755 },
    );
  }

  static async create(hostId: string, vmCount: number): Promise<ChaosHost> {
    const fake = await FakeVirshHost.create();
    const vms: VmRef[] = [];
    for (let index = 0; index < vmCount; index += 1) vms.push(fake.addDomain({ name: `vm-${String(index).padStart(3, '0')}` }));
    return new ChaosHost(hostId, fake, vms);
  }

  /** The worker's environment for this host (the wrapper needs nothing else). */
  get env(): Record<string, string> {
    return { VIRSH_PATH: this.virshPath, ...this.fake.env };
  }

  /**
   * The worker that runs the next successful snapshot-create-as of `vm` is SIGKILLed right
   * after it (virsh succeeded; the worker never reports): what the fake's killParent does,
   * done by the wrapper, which is the fake's parent here.
   */
  killWorkerAfterCreate(vm: VmRef): void {
    writeFileSync(join(this.fake.stateDir, `kill-worker-after-create.${vm.uuid}`), '');
  }

  setFaults(rules: FakeVirshFault[]): void {
    this.fake.setFaults(rules);
  }

  /** Every call that ended (exit status recorded), in the order they ended. */
  exits(): VirshExit[] {
    return readFileSync(this.exitLog, 'utf8')
      .split(RECORD)
      .filter((record) => record !== '')
      .map((record) => {
        const [code, ...argv] = record.split(FIELD);
        return { code: Number(code), argv };
      });
  }

  /** Snapshot names (of one VM) that the host holds now. */
  snapshotsOf(vm: VmRef): Array<{ name: string; description: string | null }> {
    return this.fake.domain(vm.uuid).snapshots.map((snapshot) => ({ name: snapshot.name, description: snapshot.description }));
  }

  async dispose(): Promise<void> {
    await this.fake.dispose();
  }
}

/** `--name=x` / `--snapshotname=x` / `--domain=x` of a virsh argv. */
export function optionOf(argv: readonly string[], option: string): string | undefined {
  const prefix = `--${option}=`;
  return argv.find((arg) => arg.startsWith(prefix))?.slice(prefix.length);
}

/** Per `domain uuid + snapshot name`: how many calls of `subcommand` started and how many succeeded. */
export function mutationTally(host: ChaosHost, subcommand: string): Map<string, { started: number; succeeded: number; failed: number }> {
  const tally = new Map<string, { started: number; succeeded: number; failed: number }>();
  const entry = (key: string) => {
    let value = tally.get(key);
    if (!value) tally.set(key, (value = { started: 0, succeeded: 0, failed: 0 }));
    return value;
  };
  const nameOption = subcommand === 'snapshot-create-as' ? 'name' : 'snapshotname';
  for (const call of host.fake.calls()) {
    if (!call.argv.includes(subcommand)) continue;
    entry(`${optionOf(call.argv, 'domain')} ${optionOf(call.argv, nameOption)}`).started += 1;
  }
  for (const exit of host.exits()) {
    if (!exit.argv.includes(subcommand)) continue;
    const value = entry(`${optionOf(exit.argv, 'domain')} ${optionOf(exit.argv, nameOption)}`);
    if (exit.code === 0) value.succeeded += 1;
    else value.failed += 1;
  }
  return tally;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}
