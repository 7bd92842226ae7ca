import { FakeVirshHost, type FakeVirshFault } from '../../test/fixtures/fake-virsh-host.js';

/**
 * A simulated KVM host for the chaos run: the tests' fake virsh (its state directory,
 * fault injection, `calls.jsonl`, and `results.jsonl`, where the fake records how each
 * command ended). "At most one successful snapshot-create-as per VM and name" is read
 * from what virsh answered, not inferred, also for a create that ran on a command line
 * with its read-back. A command killed with its process group (the worker's
 * VIRSH_TIMEOUT_MS) leaves no result: it did not succeed as far as the worker knew.
 */

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
  /** The scenario's own fault rules, and the one-shot "kill the worker after this VM's create" rules. */
  private scenarioFaults: FakeVirshFault[] = [];
  private killRules: FakeVirshFault[] = [];

  private constructor(
    readonly hostId: string,
    readonly fake: FakeVirshHost,
    readonly vms: VmRef[],
  ) {
    this.virshPath = fake.path;
  }

  static async create(hostId: string, vmCount: number): Promise<ChaosHost> {
    const fake = await FakeVirshHost.create();
    const vms: VmRef[] = [];
    for (let index = 0; index < vmCount; index += 1) vms.push(fake.addDomain({ name: `vm-${String(index).padStart(3, '0')}` }));
    return new ChaosHost(hostId, fake, vms);
  }

  /** The worker's environment for this host. */
  get env(): Record<string, string> {
    return { VIRSH_PATH: this.virshPath, ...this.fake.env };
  }

  /**
   * The worker that runs the next successful snapshot-create-as of `vm` is SIGKILLed right
   * after it (virsh succeeded; the worker never reports): the fake's killParent, once.
   */
  killWorkerAfterCreate(vm: VmRef): void {
    this.killRules.push({ match: { subcommand: 'snapshot-create-as', domain: vm.uuid }, killParent: true, times: 1 });
    this.fake.setFaults([...this.killRules, ...this.scenarioFaults]);
  }

  setFaults(rules: FakeVirshFault[]): void {
    this.scenarioFaults = rules;
    this.fake.setFaults([...this.killRules, ...rules]);
  }

  /** Every command that ended (not killed or hung), in the order they ended: 0 when it succeeded. */
  exits(): VirshExit[] {
    return this.fake.results().map(({ argv, ok }) => ({ code: ok ? 0 : 1, argv }));
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
