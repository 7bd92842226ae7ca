import { fleetMatcher, parseFleetSelector } from '../../../shared/fleet.js';
import { compileGlob } from '../../../shared/glob.js';
import { authorize, isAllowed, type Actor } from '../authorize.js';
import type { SnapbotCore } from '../core.js';
import { listHosts } from '../hosts.js';

/** Fleet list: which VMs hold which snapshots, from the hosts' inventories (no job is queued). */

export interface FleetListRow {
  host: string;
  online: boolean;
  vm: string;
  state: string;
  snapshots: string[];
}

export async function fleetList(core: SnapbotCore, input: { target: string; name?: string | undefined; actor?: Actor | undefined }): Promise<FleetListRow[]> {
  if (input.actor) authorize(core.policy, input.actor, 'list');
  const matches = fleetMatcher(parseFleetSelector(input.target));
  const nameMatcher = input.name ? compileGlob(input.name) : null;
  const rows: FleetListRow[] = [];
  for (const host of await listHosts(core)) {
    for (const vm of host.vms) {
      if (!matches(host.hostId, vm.name)) continue;
      const snapshots = vm.snapshots.map((snapshot) => snapshot.name).filter((name) => !nameMatcher || nameMatcher(name));
      if (nameMatcher && snapshots.length === 0) continue;
      rows.push({ host: host.hostId, online: host.online, vm: vm.name, state: vm.state, snapshots });
    }
  }
  return visibleFleetListRows(core, rows.sort((a, b) => a.vm.localeCompare(b.vm) || a.host.localeCompare(b.host)), input.actor);
}

/**
 * The rows of a listing that `actor` may see: whoever pages through a listing (not only
 * who ran it) sees only the VMs the policy lets them list. FORBIDDEN when they may not
 * list at all.
 */
export function visibleFleetListRows(core: SnapbotCore, rows: FleetListRow[], actor: Actor | undefined): FleetListRow[] {
  if (!actor) return rows;
  authorize(core.policy, actor, 'list');
  return rows.filter((row) => isAllowed(core.policy, actor, 'list', { host: row.host, vm: row.vm }));
}
