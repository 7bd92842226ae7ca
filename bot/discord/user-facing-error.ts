import { randomBytes } from 'node:crypto';
import { SnapbotError, type ErrorPayload } from '../../shared/errors.js';
import type { Logger } from '../../shared/logger.js';

/**
 * What a user is shown for an error: a SnapbotError as it is (its code and sentence);
 * anything else as INTERNAL with a reference to the log line that holds the detail —
 * never the raw message, which may hold paths, ids or secrets.
 */
export function userFacingError(logger: Logger, error: unknown, where: Record<string, string>): ErrorPayload {
  if (error instanceof SnapbotError) return error.toPayload();
  const reference = randomBytes(4).toString('hex');
  logger.error({ err: error, reference, ...where }, 'internal error');
  return { code: 'INTERNAL', message: internalErrorMessage(reference) };
}

/** The one wording of an internal error users see. */
export function internalErrorMessage(reference: string): string {
  return `Internal error in the bot (ref ${reference}); the detail is in the bot's log.`;
}
