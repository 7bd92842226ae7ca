import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { SnapbotError } from './errors.js';

/**
 * Ed25519 signatures with Node's own crypto. The control process (the authority) signs
 * what it decided — jobs, approval requests and votes, fleet plans, notices — and
 * whoever acts on them later (a worker, a bot process reading Redis) verifies, so a
 * Redis writer cannot forge a decision. snapctl signs its requests the same way with an
 * operator key. Every signed text starts with a domain (`snapbot-job/v1`, …), so a
 * signature made for one purpose is never valid for another.
 */

/**
 * JSON with keys sorted at every level and `undefined` left out: the same value always
 * gives the same bytes, whatever order its object was built in.
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') {
    if (typeof value === 'number' && !Number.isFinite(value)) throw new SnapbotError('INTERNAL', 'cannot sign a non-finite number');
    return JSON.stringify(value) ?? 'null';
  }
  if (Array.isArray(value)) return `[${value.map((item) => (item === undefined ? 'null' : canonicalJson(item))).join(',')}]`;
  const entries = Object.entries(value as Record<string, unknown>)
    .filter(([, item]) => item !== undefined)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  return `{${entries.map(([key, item]) => `${JSON.stringify(key)}:${canonicalJson(item)}`).join(',')}}`;
}

/** The text a signature covers: the purpose, then the canonical value. */
function signedText(domain: string, value: unknown): Buffer {
  return Buffer.from(`${domain}\n${canonicalJson(value)}`, 'utf8');
}

/** A short, stable name for a public key: the first 16 hex digits of the SHA-256 of its DER form. */
export function keyIdOf(publicKey: KeyObject): string {
  return createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex').slice(0, 16);
}

/** Checks signatures made by one key. */
export class SignatureVerifier {
  readonly keyId: string;

  constructor(readonly publicKey: KeyObject) {
    if (publicKey.asymmetricKeyType !== 'ed25519') throw new SnapbotError('VALIDATION', `expected an Ed25519 public key, got ${publicKey.asymmetricKeyType ?? 'unknown'}`);
    this.keyId = keyIdOf(publicKey);
  }

  /** True only for a well-formed signature of exactly this value for this purpose. */
  verify(domain: string, value: unknown, signature: unknown): boolean {
    if (typeof signature !== 'string' || !/^[A-Za-z0-9_-]{86}$/.test(signature)) return false;
    try {
      return verify(null, signedText(domain, value), this.publicKey, Buffer.from(signature, 'base64url'));
    } catch {
      return false;
    }
  }

  /** The public key as PEM (SPKI), for a worker's or an operator's configuration. */
  publicKeyPem(): string {
    return this.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  }
}

/** Signs with one private key (and verifies with its public half). */
export class Signer extends SignatureVerifier {
  constructor(private readonly privateKey: KeyObject) {
    super(createPublicKey(privateKey));
  }

  /** base64url, 86 characters. */
  sign(domain: string, value: unknown): string {
    return sign(null, signedText(domain, value), this.privateKey).toString('base64url');
  }

  static generate(): Signer {
    return new Signer(generateKeyPairSync('ed25519').privateKey);
  }

  privateKeyPem(): string {
    return this.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  }
}

/** Reads an Ed25519 private key (PKCS#8 PEM) from `path`. */
export function readSigner(path: string, variable: string): Signer {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (error) {
    throw new SnapbotError('VALIDATION', `${variable}: cannot read the private key ${path}: ${(error as Error).message}`);
  }
  try {
    return new Signer(createPrivateKey(pem));
  } catch (error) {
    throw new SnapbotError('VALIDATION', `${variable}: ${path} is not an Ed25519 private key in PEM: ${error instanceof SnapbotError ? error.message : (error as Error).message}`);
  }
}

/**
 * The key at `path`, made on first use: mode 0600 in a 0700 directory, its public half
 * beside it as `<path>.pub` (what workers and the control process are given).
 */
export function loadOrCreateSigner(path: string, variable: string): Signer {
  if (existsSync(path)) return readSigner(path, variable);
  const signer = Signer.generate();
  mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  // 'wx': two processes starting at once must not each write a different key.
  try {
    writeFileSync(path, signer.privateKeyPem(), { mode: 0o600, flag: 'wx' });
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return readSigner(path, variable);
    throw new SnapbotError('VALIDATION', `${variable}: cannot write a new key to ${path}: ${(error as Error).message}`);
  }
  chmodSync(path, 0o600);
  writeFileSync(`${path}.pub`, signer.publicKeyPem(), { mode: 0o644 });
  return signer;
}

/**
 * A public key from configuration: PEM text itself, or a path to a PEM file. Ed25519
 * only; anything else is a VALIDATION error naming the variable.
 */
export function readPublicKey(pemOrPath: string, variable: string): SignatureVerifier {
  let pem = pemOrPath;
  if (!pemOrPath.includes('-----BEGIN')) {
    try {
      pem = readFileSync(pemOrPath, 'utf8');
    } catch (error) {
      throw new SnapbotError('VALIDATION', `${variable}: cannot read the public key ${pemOrPath}: ${(error as Error).message}`);
    }
  }
  try {
    return new SignatureVerifier(createPublicKey(pem));
  } catch (error) {
    throw new SnapbotError('VALIDATION', `${variable}: not an Ed25519 public key in PEM: ${error instanceof SnapbotError ? error.message : (error as Error).message}`);
  }
}
