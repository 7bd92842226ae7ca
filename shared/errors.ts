/**
 * Error codes shared by the bot, snapctl and the workers. Each code has one sentence
 * that users see; the detail (virsh's own words, ids) travels beside it.
 */
export const ERROR_SENTENCES = {
  VALIDATION: 'The request is not valid.',
  FORBIDDEN: 'You are not allowed to do that.',
  HOST_UNKNOWN: 'No KVM host with that id has ever reported to snapbot.',
  HOST_OFFLINE: 'That KVM host is offline: its worker has not sent a heartbeat recently.',
  DOMAIN_NOT_FOUND: 'No such VM on that host.',
  SNAPSHOT_NOT_FOUND: 'No such snapshot on that VM.',
  SNAPSHOT_EXISTS: 'A snapshot with that name already exists on that VM.',
  UNSUPPORTED: "This host's libvirt cannot do that.",
  HYPERVISOR_UNAVAILABLE: 'The worker cannot reach libvirt on that host.',
  BUSY: 'The VM is busy with another operation.',
  NO_SPACE: 'The storage under the VM is too full to take a snapshot safely; nothing was done.',
  TIMEOUT: 'The operation did not finish in time.',
  APPROVAL_REQUIRED: 'This action needs approval from teammates first.',
  APPROVAL_EXPIRED: 'The approval request has expired.',
  APPROVAL_STALE: 'The snapshot changed after it was approved, so nothing was done.',
  CANCELLED: 'The operation was cancelled before it started; nothing was done.',
  PARTIAL: 'Part of the fleet run failed or did not run; the report says which.',
  REDIS_UNAVAILABLE: 'Cannot reach Redis (check REDIS_URL).',
  CONTROL_UNAVAILABLE: 'No control process (npm run bot, or npm start) is running to take the request.',
  INTERNAL: 'Internal error.',
} as const;

export type ErrorCode = keyof typeof ERROR_SENTENCES;
export const ERROR_CODES = Object.keys(ERROR_SENTENCES) as ErrorCode[];

export function isErrorCode(value: string): value is ErrorCode {
  return Object.hasOwn(ERROR_SENTENCES, value);
}

/** What crosses Redis and what `snapctl --json` prints for a failure. */
export interface ErrorPayload {
  code: ErrorCode;
  message: string;
}

/**
 * An error meant for users: a code from the shared list and a message that says what
 * happened in this case. `detail` carries machine facts (virsh argv, stderr, exit code)
 * for logs; `permanent` says whether retrying can help.
 */
export class SnapbotError extends Error {
  override readonly name = 'SnapbotError';
  readonly code: ErrorCode;
  readonly detail: Record<string, unknown>;
  readonly permanent: boolean;

  constructor(
    code: ErrorCode,
    message: string = ERROR_SENTENCES[code],
    options: { detail?: Record<string, unknown>; permanent?: boolean; cause?: unknown } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options.detail ?? {};
    this.permanent = options.permanent ?? !TRANSIENT_CODES.has(code);
  }

  toPayload(): ErrorPayload {
    return { code: this.code, message: this.message };
  }
}

/** Codes where a later attempt may succeed without anyone changing anything. */
const TRANSIENT_CODES: ReadonlySet<ErrorCode> = new Set(['HYPERVISOR_UNAVAILABLE', 'BUSY', 'REDIS_UNAVAILABLE']);

/**
 * BullMQ keeps only an error's message (`failedReason`). Jobs fail with
 * "CODE: message" so the code survives the trip and dashboards stay readable.
 */
export function encodeFailedReason(error: ErrorPayload): string {
  return `${error.code}: ${error.message}`;
}

export function decodeFailedReason(reason: string | undefined): ErrorPayload {
  const match = /^([A-Z_]+): ([\s\S]*)$/.exec(reason ?? '');
  if (match && isErrorCode(match[1]!)) return { code: match[1], message: match[2]! };
  return { code: 'INTERNAL', message: reason || ERROR_SENTENCES.INTERNAL };
}

/** Turns anything thrown into a payload; unknown errors become INTERNAL. */
export function toErrorPayload(error: unknown): ErrorPayload {
  if (error instanceof SnapbotError) return error.toPayload();
  const message = error instanceof Error ? error.message : String(error);
  return { code: 'INTERNAL', message };
}
