/**
 * Redis key names of the control plane, in one place (queue names and the hosts'
 * registry are in queues.ts, a fleet run's own keys in fleet.ts). Every key starts with
 * the prefix, one hash tag (`{snapbot}`), so a Redis Cluster keeps them in one slot and
 * the Lua scripts may touch several at once.
 */

export function approvalKeys(prefix: string) {
  return {
    /** Hash: the request (`data` JSON), `status`, `expiresAtMs`, decision fields, `message`. */
    request: (id: string) => `${prefix}:approval:${id}`,
    /** Set: user ids whose approval counted. */
    approvals: (id: string) => `${prefix}:approval:${id}:approvals`,
    /** Sorted set: pending request ids by expiry (ms, Redis's clock). */
    pending: `${prefix}:approvals:pending`,
    /** Set: approved request ids whose action has not been taken yet (a process died in between). */
    toAct: `${prefix}:approvals:to-act`,
    /** List: request ids opened outside Discord, for a bot to post in the channel. */
    toPost: `${prefix}:approvals:to-post`,
    /** Set: expired request ids whose chat message still shows live buttons, until a bot redraws it. */
    expiredToShow: `${prefix}:approvals:expired-to-show`,
  };
}

export function fleetIndexKeys(prefix: string) {
  return {
    /** Set: runs under way (running or cancelling), for adoption by a bot. */
    active: `${prefix}:fleet:active`,
  };
}

/** The audit stream is trimmed to about this many entries. */
export const AUDIT_MAX_ENTRIES = 10_000;

export function auditKeys(prefix: string) {
  return {
    /** Stream: the audit trail. */
    stream: `${prefix}:audit`,
    /** List: notices for the team channel (break-glass use), posted by one bot each. */
    notices: `${prefix}:notices`,
  };
}

export function botKeys(prefix: string) {
  return {
    /** Exists while a bot process sweeps (posts requests, takes clicks). */
    alive: `${prefix}:bot:alive`,
  };
}

export function discordKeys(prefix: string) {
  return {
    /** JSON of a /snapshot list result, for its page buttons. */
    snapshotListPages: (id: string) => `${prefix}:discord:list:${id}`,
    /** JSON of a /fleet list result, for its page buttons. */
    fleetListPages: (id: string) => `${prefix}:discord:fleet-list:${id}`,
  };
}

export function signedJobKeys(prefix: string) {
  return {
    /** String: the BullMQ timestamp of the job first run under this id (a job added again under it is a replay). */
    job: (jobId: string) => `${prefix}:signed:job:${jobId}`,
    /** String: the one job id that carries out this approval. */
    approval: (approvalId: string) => `${prefix}:signed:approval:${approvalId}`,
  };
}

export function controlKeys(prefix: string) {
  return {
    /** Exists while a control process takes snapctl requests. */
    alive: `${prefix}:control:alive`,
    /** String: a snapctl request's nonce, taken once. */
    nonce: (nonce: string) => `${prefix}:control:nonce:${nonce}`,
  };
}
