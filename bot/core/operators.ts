import { existsSync, readFileSync, statSync } from 'node:fs';
import { createPublicKey } from 'node:crypto';
import type { Operator, Policy } from '../../shared/policy.js';
import { SignatureVerifier } from '../../shared/signing.js';
import { parseSshEd25519 } from '../../shared/ssh-keys.js';
import type { Requester } from './approvals.js';
import type { Actor } from './authorize.js';

/**
 * The snapctl users the control process trusts, by key id. Each is an Actor to the
 * policy (their role ids, or administrator) and a Requester to approvals: linked to a
 * Discord user when the policy says so, so that person cannot approve their own request
 * from Discord; otherwise `operator:<name>`, which no Discord click can match.
 */
export interface TrustedOperator {
  name: string;
  verifier: SignatureVerifier;
  actor: Actor;
  requester: Requester;
}

/** The name the checkout's own snapctl key goes by. */
export const LOCAL_ADMINISTRATOR = 'local-admin';

function trusted(name: string, verifier: SignatureVerifier, roles: readonly string[], administrator: boolean, discordUser: string | undefined): TrustedOperator {
  const id = `snapctl:${name}`;
  const userId = discordUser ?? `operator:${name}`;
  return {
    name,
    verifier,
    actor: { id, userId, displayName: name, roleIds: roles, roleNames: [], isAdministrator: administrator },
    requester: { id, userId, displayName: name },
  };
}

export class OperatorDirectory {
  private readonly byKeyId = new Map<string, TrustedOperator>();
  private local: { mtimeMs: number; operator: TrustedOperator } | undefined;

  /**
   * `localAdministratorKey`: the public key file of snapctl's key in the control process's
   * own data directory (made by the first snapctl run there). It is trusted as an
   * administrator only when no policy file is given — as root is for virsh on that machine.
   */
  constructor(policy: Policy, private readonly localAdministratorKey: string | undefined) {
    for (const operator of policy.operators) {
      const verifier = new SignatureVerifier(parseSshEd25519(operator.key, `SNAPBOT_POLICY: operators.${operator.name}.key`));
      this.byKeyId.set(verifier.keyId, fromPolicy(operator, verifier));
    }
  }

  find(keyId: string): TrustedOperator | undefined {
    return this.byKeyId.get(keyId) ?? this.localAdministrator(keyId);
  }

  /** Read again when the file changes: snapctl makes it on first use, maybe after the control process started. */
  private localAdministrator(keyId: string): TrustedOperator | undefined {
    const path = this.localAdministratorKey;
    if (!path || !existsSync(path)) return undefined;
    const { mtimeMs } = statSync(path);
    if (this.local?.mtimeMs !== mtimeMs) {
      try {
        const verifier = new SignatureVerifier(createPublicKey(readFileSync(path, 'utf8')));
        this.local = { mtimeMs, operator: trusted(LOCAL_ADMINISTRATOR, verifier, [], true, undefined) };
      } catch {
        this.local = undefined;
        return undefined;
      }
    }
    return this.local.operator.verifier.keyId === keyId ? this.local.operator : undefined;
  }
}

function fromPolicy(operator: Operator, verifier: SignatureVerifier): TrustedOperator {
  return trusted(operator.name, verifier, operator.roles, operator.administrator, operator.discordUser);
}
