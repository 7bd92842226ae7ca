import { SnapbotError } from '../shared/errors.js';
import type { InventoryVm } from '../shared/hosts.js';
import type { Logger } from '../shared/logger.js';
import type { DomainWatch, NameStamp } from './domain-watch.js';
import type { DomainSummary, Hypervisor, SnapshotName } from './hypervisor/hypervisor.js';

export interface ResolvedVm {
  uuid: string;
  name: string;
}

/**
 * The worker's own view of its host: every domain with its UUID, state and snapshots.
 * It is what the heartbeat publishes, and what turns a VM name into the UUID that
 * every virsh call uses.
 */
export class HostInventory {
  private readonly vms = new Map<string, InventoryVm>();
  /** When each UUID's name was last read from libvirt, in the watch's terms (domain-watch.ts). */
  private readonly nameStamps = new Map<string, NameStamp>();
  private refreshedAt: string | null = null;
  private lastError: string | null = null;

  /** `watch`: libvirt's lifecycle events, which let a job skip the name check while no name moved. */
  constructor(
    private readonly hypervisor: Hypervisor,
    private readonly logger: Logger,
    private readonly watch: DomainWatch | null = null,
  ) {}

  /** Re-reads every domain and its snapshots. Failures are kept for the heartbeat, not thrown. */
  async refreshAll(): Promise<void> {
    try {
      const stamp = this.stamp();
      const domains = await this.hypervisor.readInventory();
      this.vms.clear();
      this.nameStamps.clear();
      for (const { uuid, name, state, snapshots } of domains) {
        this.vms.set(uuid, { uuid, name, state, snapshots });
        this.nameStamps.set(uuid, stamp);
      }
      this.refreshedAt = new Date().toISOString();
      this.lastError = null;
    } catch (error) {
      this.lastError = error instanceof Error ? error.message : String(error);
      this.logger.warn({ err: error }, 'inventory refresh failed');
    }
  }

  /** Re-reads one domain after a job changed it; drops it when it is gone. */
  async refreshVm(uuid: string): Promise<void> {
    try {
      const stamp = this.stamp();
      const name = await this.hypervisor.domainName(uuid);
      const state = await this.hypervisor.domainState(uuid);
      const vm = await this.readVm({ uuid, name, state });
      if (vm) {
        this.vms.set(uuid, vm);
        this.nameStamps.set(uuid, stamp);
      } else this.forget(uuid);
    } catch (error) {
      if (error instanceof SnapbotError && error.code === 'DOMAIN_NOT_FOUND') this.forget(uuid);
      else this.logger.warn({ err: error, uuid }, 'inventory refresh of one VM failed');
    }
  }

  /**
   * What a job just did to a VM's snapshots, applied without asking libvirt again (the
   * periodic refresh still re-reads everything, so drift does not last).
   */
  noteSnapshot(uuid: string, change: { added: SnapshotName } | { removed: string }): void {
    const vm = this.vms.get(uuid);
    if (!vm) return;
    if ('added' in change) {
      if (!vm.snapshots.some((snapshot) => snapshot.name === change.added.name)) vm.snapshots = [...vm.snapshots, change.added];
    } else {
      vm.snapshots = vm.snapshots.filter((snapshot) => snapshot.name !== change.removed);
    }
  }

  private async readVm(domain: DomainSummary): Promise<InventoryVm | null> {
    try {
      const snapshots = await this.hypervisor.listSnapshotNames(domain.uuid);
      return { name: domain.name, uuid: domain.uuid, state: domain.state, snapshots };
    } catch (error) {
      // The domain vanished between the listing and this call.
      if (error instanceof SnapbotError && error.code === 'DOMAIN_NOT_FOUND') return null;
      throw error;
    }
  }

  view(): { vms: InventoryVm[]; inventoryAt: string | null; inventoryError: string | null } {
    const vms = [...this.vms.values()].sort((a, b) => a.name.localeCompare(b.name));
    return { vms, inventoryAt: this.refreshedAt, inventoryError: this.lastError };
  }

  /**
   * Turns the VM name of a job into the UUID to act on, checked against libvirt right
   * now, or read from libvirt earlier with no lifecycle event since that could have moved
   * a name (domain-watch.ts). When the requester saw a UUID and the name now belongs to
   * another domain, it refuses: the VM was replaced, and acting on it would touch the
   * wrong machine.
   * `hypervisor`: the job's view, so its virsh calls log with the job's id.
   */
  async resolveVm(name: string, expectedUuid: string | undefined, hypervisor: Hypervisor = this.hypervisor): Promise<ResolvedVm> {
    let uuid = this.findUuid(name);
    // No name has moved since this one was read (the watch heard no such event): trusted,
    // without a virsh process of its own. Otherwise asked again, as always.
    if (uuid !== undefined && this.watch?.holds(this.nameStamps.get(uuid))) return this.checkedAgainst(name, uuid, expectedUuid);
    if (uuid === undefined || !(await this.stillNamed(uuid, name, hypervisor))) {
      await this.refreshDomains(hypervisor);
      uuid = this.findUuid(name);
    }
    if (uuid === undefined) {
      throw new SnapbotError('DOMAIN_NOT_FOUND', `No VM named '${name}' on this host.`);
    }
    return this.checkedAgainst(name, uuid, expectedUuid);
  }

  /** Refuses when the requester saw another UUID for the name: the VM was replaced. */
  private checkedAgainst(name: string, uuid: string, expectedUuid: string | undefined): ResolvedVm {
    if (expectedUuid !== undefined && expectedUuid.toLowerCase() !== uuid.toLowerCase()) {
      throw new SnapbotError(
        'DOMAIN_NOT_FOUND',
        `VM '${name}' now has UUID ${uuid}, not ${expectedUuid} as requested: it was replaced, so nothing was done.`,
      );
    }
    return { uuid, name };
  }

  private findUuid(name: string): string | undefined {
    for (const vm of this.vms.values()) if (vm.name === name) return vm.uuid;
    return undefined;
  }

  private stamp(): NameStamp {
    return this.watch?.stamp() ?? null;
  }

  private forget(uuid: string): void {
    this.vms.delete(uuid);
    this.nameStamps.delete(uuid);
  }

  private async stillNamed(uuid: string, name: string, hypervisor: Hypervisor): Promise<boolean> {
    try {
      const stamp = this.stamp();
      const still = (await hypervisor.domainName(uuid)) === name;
      if (still) this.nameStamps.set(uuid, stamp);
      return still;
    } catch (error) {
      if (error instanceof SnapbotError && error.code === 'DOMAIN_NOT_FOUND') return false;
      throw error;
    }
  }

  /** Cheap refresh of names and states only; snapshots of known VMs are kept. */
  private async refreshDomains(hypervisor: Hypervisor): Promise<void> {
    const stamp = this.stamp();
    const domains = await hypervisor.listDomains();
    const seen = new Set<string>();
    for (const domain of domains) {
      seen.add(domain.uuid);
      const known = this.vms.get(domain.uuid);
      this.vms.set(domain.uuid, { ...domain, snapshots: known?.snapshots ?? [] });
      this.nameStamps.set(domain.uuid, stamp);
    }
    for (const uuid of [...this.vms.keys()]) if (!seen.has(uuid)) this.forget(uuid);
  }
}
