import { z } from 'zod';

/**
 * Name rules follow libvirt's own (non-empty, no '/') plus what keeps names safe to
 * show and to use as file names: bounded length, no control characters, no leading or
 * trailing blanks. Anything else, including names that look like options or shell, is
 * allowed and passed to virsh literally as one argv element.
 */
const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f]/;

function libvirtName(what: string, maxLength: number) {
  return z
    .string({ error: `${what} is required` })
    .min(1, `${what} must not be empty`)
    .max(maxLength, `${what} must be at most ${maxLength} characters`)
    .refine((value) => !value.includes('/'), `${what} must not contain '/'`)
    .refine((value) => !CONTROL_CHARACTERS.test(value), `${what} must not contain control characters`)
    .refine((value) => value.trim() === value, `${what} must not start or end with spaces`);
}

/** A libvirt domain name as an operator types it. */
export const vmNameSchema = libvirtName('VM name', 200);
/** A snapshot name; libvirt also uses it in external overlay file names (`disk.NAME`). */
export const snapshotNameSchema = libvirtName('snapshot name', 128).refine(
  (value) => value !== '.' && value !== '..',
  "snapshot name must not be '.' or '..'",
);
/** Host ids become queue names (`host.<id>`), so they keep to hostname characters. */
export const hostIdSchema = z
  .string()
  .min(1, 'host id must not be empty')
  .max(63, 'host id must be at most 63 characters')
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'host id may contain only letters, digits, ".", "_" and "-"');

export const descriptionSchema = z
  .string()
  .max(1000, 'description must be at most 1000 characters')
  .refine((value) => !/[\u0000-\u0008\u000b-\u001f\u007f]/.test(value), 'description must not contain control characters');

export const uuidSchema = z
  .string()
  .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i, 'not a UUID');

/** The name snapbot gives a snapshot when the operator gives none: `snap-20261128-004612`. */
export function defaultSnapshotName(now: Date = new Date()): string {
  const iso = now.toISOString(); // 2026-11-28T00:46:12.345Z
  return `snap-${iso.slice(0, 10).replaceAll('-', '')}-${iso.slice(11, 19).replaceAll(':', '')}`;
}
