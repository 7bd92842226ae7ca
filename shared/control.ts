import { z } from 'zod';

/**
 * snapctl → control process. snapctl does not decide anything: it signs a request with
 * its operator key and puts it on the `control` queue; the control process (`npm run
 * bot`) checks the signature against the operators it trusts, applies its own policy
 * (the one clients cannot choose), and answers with the job's return value. Reads (list,
 * info, hosts, audit, fleet status) need no signature and do not go through here.
 */
export const CONTROL_QUEUE = 'control';
export const CONTROL_REQUEST_DOMAIN = 'snapbot-control/v1';

/** A request must reach the control process within this long of being signed (clock skew included). */
export const CONTROL_REQUEST_MAX_AGE_MS = 5 * 60_000;

const text = (max: number) => z.string().max(max);

export const controlOperationSchema = z.discriminatedUnion('op', [
  z.object({ op: z.literal('create'), vm: text(300), host: text(100).optional(), name: text(300).optional(), mode: text(20).optional(), description: text(2000).optional() }).strict(),
  z
    .object({
      op: z.enum(['revert', 'delete']),
      vm: text(300),
      host: text(100).optional(),
      name: text(300),
      breakGlass: text(1000).optional(),
      /** Wait for the approval (when one is needed) and the result, up to the request's timeout. */
      wait: z.boolean(),
    })
    .strict(),
  z
    .object({
      op: z.literal('fleet-plan'),
      action: z.enum(['snapshot', 'delete']),
      target: text(2000),
      name: text(300).optional(),
      mode: text(20).optional(),
      description: text(2000).optional(),
    })
    .strict(),
  z.object({ op: z.literal('fleet-retry'), runId: text(64) }).strict(),
  z.object({ op: z.literal('fleet-confirm'), runId: text(64), wait: z.boolean() }).strict(),
  z.object({ op: z.literal('fleet-cancel'), runId: text(64) }).strict(),
  z
    .object({
      op: z.literal('schedule-create'),
      name: text(100),
      target: text(2000),
      cron: text(300).optional(),
      every: text(50).optional(),
      tz: text(100).optional(),
      keep: text(300),
      mode: text(20).optional(),
      prefix: text(100).optional(),
      description: text(2000).optional(),
    })
    .strict(),
  z.object({ op: z.enum(['schedule-pause', 'schedule-resume', 'schedule-delete']), name: text(100) }).strict(),
  /** Fires it once now; with `wait`, answers with the firing's record. */
  z.object({ op: z.literal('schedule-run'), name: text(100), wait: z.boolean() }).strict(),
]);
export type ControlOperation = z.infer<typeof controlOperationSchema>;

/** What is signed. `nonce` is also the BullMQ job id: a request is taken once. */
export const controlRequestSchema = z
  .object({
    v: z.literal(1),
    keyId: z.string().regex(/^[0-9a-f]{16}$/),
    nonce: z.string().regex(/^[0-9a-f]{32}$/),
    /** Milliseconds since the epoch, snapctl's clock. */
    issuedAt: z.number().int().nonnegative(),
    /** How long snapctl waits for the answer (its --timeout). */
    timeoutMs: z.number().int().positive().max(7 * 24 * 3600_000),
    operation: controlOperationSchema,
  })
  .strict();
export type ControlRequest = z.infer<typeof controlRequestSchema>;

export const controlEnvelopeSchema = z.object({ request: controlRequestSchema, signature: z.string().max(128) }).strict();
export type ControlEnvelope = z.infer<typeof controlEnvelopeSchema>;

/** Progress the control process reports while it works on a request (BullMQ job progress). */
export const controlProgressSchema = z.discriminatedUnion('type', [
  /** A line for snapctl's user (stderr; nothing in --json mode). */
  z.object({ type: z.literal('say'), text: z.string() }),
  /** A host job was queued. */
  z.object({ type: z.literal('queued'), jobId: z.string(), host: z.string() }),
  /** The host job's own progress. */
  z.object({ type: z.literal('job'), phase: z.string(), message: z.string() }),
]);
export type ControlProgress = z.infer<typeof controlProgressSchema>;
