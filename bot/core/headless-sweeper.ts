import { sweepApprovals } from './approval-sweep.js';
import type { SnapbotCore } from './core.js';
import { claimFleetWatcher, orphanedFleetRuns, watchFleetRun } from './fleet/index.js';
import { executeApproved } from './snapshot-approvals.js';

/**
 * The sweep of a control process that serves no chat (`npm run bot` without
 * DISCORD_TOKEN): requests past their time are expired (by Redis's clock), approved
 * actions nobody took are taken, and fleet runs nobody follows are followed to their end.
 * Requests opened from snapctl stay queued for a Discord-serving process to post, and
 * this process does not say a bot is alive (nothing here takes clicks).
 */
export function startHeadlessSweeper(core: SnapbotCore, options: { intervalMs?: number; jobTimeoutMs: number }): () => Promise<void> {
  const intervalMs = options.intervalMs ?? 2_000;
  const running = new Set<string>();
  const watching = new Map<string, Promise<unknown>>();
  const stopping = new AbortController();
  let busy = false;
  const sweep = async () => {
    if (busy || stopping.signal.aborted) return;
    busy = true;
    try {
      // No `expired` handler: messages of expired requests wait for a process that serves Discord.
      await sweepApprovals(core, {
        approved: async (state) => {
          // A fleet run was started by the sweep itself; its watcher is adopted below.
          if (state.request.subject.kind !== 'snapshot' || running.has(state.request.id)) return;
          running.add(state.request.id);
          void executeApproved(core, state.request, { timeoutMs: options.jobTimeoutMs })
            .catch((error: unknown) => core.logger.warn({ err: error, request: state.request.id }, 'approved action failed'))
            .finally(() => running.delete(state.request.id));
        },
      });
      for (const runId of await orphanedFleetRuns(core)) {
        if (watching.has(runId) || !(await claimFleetWatcher(core, runId))) continue;
        core.logger.info({ fleetRun: runId }, 'following a fleet run nobody follows');
        const watch = watchFleetRun(core, runId, { signal: stopping.signal })
          .catch((error: unknown) => core.logger.warn({ err: error, fleetRun: runId }, 'following a fleet run failed'))
          .finally(() => watching.delete(runId));
        watching.set(runId, watch);
      }
    } catch (error) {
      core.logger.warn({ err: error }, 'sweep failed');
    } finally {
      busy = false;
    }
  };
  void sweep();
  const timer = setInterval(() => void sweep(), intervalMs);
  return async () => {
    clearInterval(timer);
    stopping.abort();
    await Promise.allSettled(watching.values());
  };
}
