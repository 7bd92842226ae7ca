import type { z } from 'zod';
import { SnapbotError } from '../../shared/errors.js';

/**
 * Parses what a user typed (a slash option, a snapctl flag) with `schema`; a refusal is
 * VALIDATION with every problem in one sentence, the one way core turns zod's errors
 * into something a user reads.
 */
export function parseInput<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  throw new SnapbotError('VALIDATION', parsed.error.issues.map((issue) => issue.message).join('; '));
}
