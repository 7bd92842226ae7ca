import type { SnapshotInfo, SnapshotMode } from '../../shared/jobs.js';
import type { Logger } from '../../shared/logger.js';
import type { LifecycleWatcherProcess } from '../domain-watch.js';

/**
 * The port between the worker and the hypervisor. The virsh adapter implements it for
 * real hosts; tests run the same adapter against a fake virsh executable. Domains are
 * always addressed by UUID (see DESIGN.md decision 2). Every method throws a
 * SnapbotError with a shared code on failure.
 */
export interface Hypervisor {
  /** libvirt (daemon) and QEMU versions of this host. */
  version(): Promise<HypervisorVersion>;
  /** Every defined domain, running or not. */
  listDomains(): Promise<DomainSummary[]>;
  /** Every defined domain with its snapshot names: the inventory, read in a few virsh processes. */
  readInventory(): Promise<InventoryDomain[]>;
  /**
   * The domain's current name (`virsh domname --domain=UUID`); DOMAIN_NOT_FOUND when no
   * domain has that UUID. Used to check, just before acting, that the UUID the worker
   * resolved still belongs to the VM the operator named.
   */
  domainName(uuid: string): Promise<string>;
  /** `virsh domstate` words (running, shut off, paused, …). */
  domainState(uuid: string): Promise<string>;
  /** Every snapshot of the domain, newest first. Descriptions are raw (job marker included). */
  listSnapshots(uuid: string): Promise<RawSnapshot[]>;
  /** Snapshot names with their location, cheaply (the inventory refreshes this often). */
  listSnapshotNames(uuid: string): Promise<SnapshotName[]>;
  /**
   * One snapshot; SNAPSHOT_NOT_FOUND when it does not exist. `knownCurrent`: the caller
   * knows whether it is the current one (a snapshot just created is), saving a lookup.
   */
  snapshotInfo(uuid: string, name: string, options?: { knownCurrent?: boolean }): Promise<RawSnapshot>;
  /**
   * The domain's disks and drives as its live XML lists them (`virsh domblklist
   * --details`), in that order: cdroms and floppies included, sources as libvirt names them.
   */
  diskSources(uuid: string): Promise<DiskSource[]>;
  /** The guest's current memory in KiB (`virsh dominfo`, "Used memory"): what a full snapshot saves. */
  memoryKiB(uuid: string): Promise<number>;
  /** Creates the snapshot and returns it as libvirt made it (it is then the current one). */
  createSnapshot(uuid: string, request: CreateSnapshotRequest): Promise<RawSnapshot>;
  revertSnapshot(uuid: string, name: string): Promise<void>;
  deleteSnapshot(uuid: string, name: string): Promise<void>;
  /** The same host, logging through `logger`: the worker passes each job's child logger (jobId, vm). */
  withLogger(logger: Logger): Hypervisor;
  /**
   * Starts `virsh event --event lifecycle --loop`, printing `readyLine` once connected and
   * ending after WATCH_LIFETIME_SECONDS (worker/domain-watch.ts). Absent where it cannot run.
   */
  startLifecycleWatcher?(readyLine: string): LifecycleWatcherProcess;
}

export interface HypervisorVersion {
  /** Version of the libvirt daemon the URI reaches, e.g. "9.0.0". */
  libvirt: string | null;
  /** Running hypervisor version, e.g. "7.2.0". */
  qemu: string | null;
}

export interface DomainSummary {
  uuid: string;
  name: string;
  state: string;
}

export interface InventoryDomain extends DomainSummary {
  snapshots: SnapshotName[];
}

/** A snapshot as libvirt describes it; `description` still holds snapbot's job marker. */
export type RawSnapshot = Omit<SnapshotInfo, 'jobId' | 'description'> & { description: string | null };

export interface SnapshotName {
  name: string;
  location: 'internal' | 'external';
  /** ISO 8601, when virsh's table could be read with certainty. */
  createdAt?: string;
}

/** One row of `virsh domblklist --details`. */
export interface DiskSource {
  /** `<disk type=…>`: file, block, network, volume, dir, nvme, … */
  type: string;
  /** `<disk device=…>`: disk, cdrom, floppy, lun. */
  device: string;
  /** The guest-side name, e.g. vda. */
  target: string;
  /** A path for file and block disks, a name for network and volume ones; null when the drive is empty. */
  source: string | null;
}

export interface CreateSnapshotRequest {
  name: string;
  description: string;
  /** disk-only: atomic external disk snapshot; full: internal memory + disk snapshot. */
  mode: SnapshotMode;
}
