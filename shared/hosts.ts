import { z } from 'zod';

export const inventorySnapshotSchema = z.object({
  name: z.string(),
  location: z.enum(['internal', 'external']),
});

export const inventoryVmSchema = z.object({
  name: z.string(),
  uuid: z.string(),
  /** `virsh domstate` words: running, shut off, paused, … */
  state: z.string(),
  snapshots: z.array(inventorySnapshotSchema),
});
export type InventoryVm = z.infer<typeof inventoryVmSchema>;

export const capabilitiesSchema = z.object({
  /** libvirt ≥ 9.9 reverts external (disk-only) snapshots; older refuses. */
  externalRevert: z.boolean(),
  /** libvirt ≥ 9.0 deletes external snapshots in the current chain. */
  externalDelete: z.boolean(),
});
export type Capabilities = z.infer<typeof capabilitiesSchema>;

/** What a worker writes into Redis every few seconds. */
export const heartbeatSchema = z.object({
  hostId: z.string(),
  libvirtUri: z.string(),
  libvirtVersion: z.string().nullable(),
  qemuVersion: z.string().nullable(),
  capabilities: capabilitiesSchema,
  vms: z.array(inventoryVmSchema),
  /** When the inventory was last read from libvirt (ISO). */
  inventoryAt: z.string().nullable(),
  /** Why the last inventory read failed, if it did (libvirt down, …). */
  inventoryError: z.string().nullable(),
  concurrency: z.number().int(),
  startedAt: z.string(),
  lastSeen: z.string(),
  workerVersion: z.string(),
});
export type Heartbeat = z.infer<typeof heartbeatSchema>;

/** A host as the bot and snapctl show it. */
export interface HostStatus extends Heartbeat {
  online: boolean;
}

/** Compares dotted versions numerically: `9.10.0` is newer than `9.9.0`. */
export function versionAtLeast(version: string | null, minimum: string): boolean {
  if (!version) return false;
  const have = version.split('.').map((part) => Number.parseInt(part, 10) || 0);
  const want = minimum.split('.').map((part) => Number.parseInt(part, 10) || 0);
  for (let index = 0; index < Math.max(have.length, want.length); index += 1) {
    const difference = (have[index] ?? 0) - (want[index] ?? 0);
    if (difference !== 0) return difference > 0;
  }
  return true;
}

export function capabilitiesForLibvirt(version: string | null): Capabilities {
  return {
    externalRevert: versionAtLeast(version, '9.9.0'),
    externalDelete: versionAtLeast(version, '9.0.0'),
  };
}
