/**
 * The custom ids of every button the bot posts, each family's format written once: the
 * renderers build ids with these functions and the handlers parse them with the same
 * module, so the two cannot drift. Discord allows 1–100 characters; every id here is
 * below (the longest is a schedule's approval: 9 + 74 + 8).
 */

const HEX = '[0-9a-f]';

/**
 * A schedule's approval request id: `schedule-<name>-<version>-<base 36 time>` (core,
 * schedules/manage.ts), at most 9 + 48 + 1 + 6 + 1 + 9 = 74 characters with the name's
 * 48 and a version of six digits, so its button id stays within 100.
 */
const SCHEDULE_REQUEST = 'schedule-[a-z0-9][a-z0-9-]{0,47}-[0-9]{1,6}-[0-9a-z]{1,9}';

/** `approval:<request id>:approve|deny` — any approval request (a revert, a delete, a fleet run, a schedule). */
export const approvalButtonId = {
  build: (requestId: string, decision: 'approve' | 'deny') => `approval:${requestId}:${decision}`,
  parse(customId: string): { id: string; decision: 'approve' | 'deny' } | undefined {
    const match = new RegExp(`^approval:(${HEX}{6,32}|${SCHEDULE_REQUEST}):(approve|deny)$`).exec(customId);
    return match ? { id: match[1]!, decision: match[2] as 'approve' | 'deny' } : undefined;
  },
};

export type FleetButtonAction = 'confirm' | 'cancel' | 'retry';

/** `fleet:<run id>:confirm|cancel|retry` — previews, summaries, and Withdraw on a fleet approval request. */
export const fleetButtonId = {
  build: (runId: string, action: FleetButtonAction) => `fleet:${runId}:${action}`,
  parse(customId: string): { runId: string; action: FleetButtonAction } | undefined {
    const match = new RegExp(`^fleet:(${HEX}{6,32}):(confirm|cancel|retry)$`).exec(customId);
    return match ? { runId: match[1]!, action: match[2] as FleetButtonAction } : undefined;
  },
};

function pageButtonId(family: string) {
  return {
    build: (listingId: string, page: number) => `${family}:${listingId}:${page}`,
    parse(customId: string): { id: string; page: number } | undefined {
      const match = new RegExp(`^${family}:(${HEX}{1,32}):(-?\\d{1,6})$`).exec(customId);
      return match ? { id: match[1]!, page: Number(match[2]) } : undefined;
    },
  };
}

/** `snapshot-list:<listing id>:<page>` — /snapshot list pages. */
export const snapshotListButtonId = pageButtonId('snapshot-list');
/** `fleet-list:<listing id>:<page>` — /fleet list pages. */
export const fleetListButtonId = pageButtonId('fleet-list');
