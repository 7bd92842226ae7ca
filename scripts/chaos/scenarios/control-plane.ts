import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { decideApproval, expireDueApprovals, getApproval, type ApprovalState } from '../../../bot/core/approvals.js';
import { redisNow } from '../../../bot/core/redis-clock.js';
import { requestDelete } from '../../../bot/core/snapshot-approvals.js';
import { loadPolicy } from '../../../shared/policy.js';
import { FakeDiscord } from '../../../test/fixtures/fake-discord/fake-discord.js';
import { guildFixture } from '../../../test/helpers/discord-bot.js';
import { SupervisedWorker, type ChaosContext } from '../cluster.js';
import { CHAOS_ADMIN, SECOND_ADMIN, waitForHosts } from '../fleet-run.js';
import { ChaosHost } from '../hosts.js';
import { CONTROL_MAIN, sleep, startNode, until, type NodeProcess } from '../processes.js';
import type { Random } from '../random.js';
import { emptyFigures, type ScenarioResult } from '../report.js';

/**
 * Scenario 3: the control plane killed while approvals are pending. The control process
 * is the real one (dist/bot/main.js) serving the in-project fake Discord, whose sweeper
 * expires requests by Redis's clock every 2 s. Requests for deletes (a policy that puts
 * deletes behind one approval, with a short time to live) are opened, then:
 *
 *   A. the control process is SIGKILLed and started again before they expire: each is
 *      `expired` no later than its expiry (or the restart, if later) + one sweep interval;
 *   B. it is SIGKILLed and stays dead past their expiry: an approval that comes late is
 *      refused (`expired`, decided by Redis's clock in the same script that counts votes),
 *      and `expireDueApprovals` from a fresh core closes the rest.
 *
 * In both, nothing ran: no snapshot-delete reached virsh, every snapshot is still there,
 * and no job of any request was queued.
 */

export interface ControlPlaneOptions {
  /** Requests opened in all, half for A and half for B. */
  requests: number;
  ttlMinutes: number;
  /** The control process's sweep interval (bot/discord/sweeper.ts: 2 s). */
  sweepIntervalMs: number;
  /** Added to the bound for polling and a loaded machine. */
  slackMs: number;
}

const SNAPSHOT = 'keep-me';

export async function controlPlaneScenario(context: ChaosContext, options: ControlPlaneOptions, random: Random): Promise<ScenarioResult> {
  const started = Date.now();
  const problems: string[] = [];
  const notes: string[] = [];
  const prefix = `{chaos-s3-${randomBytes(3).toString('hex')}}`;
  const half = Math.max(1, Math.floor(options.requests / 2));
  let host: ChaosHost | undefined;
  let worker: SupervisedWorker | undefined;
  let discord: FakeDiscord | undefined;
  let control: NodeProcess | undefined;
  let controlKills = 0;
  let opened = 0;
  const lateness: number[] = [];
  try {
    host = await ChaosHost.create('kvm-a', half * 2);
    for (const vm of host.vms) await promisify(execFile)(host.fake.path, ['snapshot-create-as', `--domain=${vm.uuid}`, `--name=${SNAPSHOT}`]);
    const policyPath = join(context.workDir, `policy-${prefix.slice(1, -1)}.yaml`);
    writeFileSync(
      policyPath,
      [
        'rules:',
        '  - role: "@administrators"',
        '    actions: [create, list, info, revert, delete, hosts, audit]',
        'approvals:',
        '  - actions: [delete]',
        '    hosts: ["*"]',
        '    vms: ["*"]',
        '    approvers: ["@administrators"]',
        '    required: 1',
        `    ttlMinutes: ${options.ttlMinutes}`,
        '',
      ].join('\n'),
    );
    const policy = loadPolicy(policyPath);
    const core = await context.connectCore(prefix, policy);
    worker = new SupervisedWorker(context, host, prefix, { lockMs: 15_000, stalledCheckMs: 5_000, virshTimeoutMs: 60_000, concurrency: 4 }, random.fork('worker'), [500, 500]);
    await worker.start();
    await waitForHosts(core, new Map([[host.hostId, host.vms.length]]));

    const guild = guildFixture();
    discord = await FakeDiscord.start(guild.options);
    const startControl = async (withDiscord = true) => {
      const proc = startNode(
        CONTROL_MAIN,
        {
          REDIS_URL: context.redis.url,
          SNAPBOT_PREFIX: prefix,
          SNAPBOT_DATA_DIR: context.dataDir,
          SNAPBOT_POLICY: policyPath,
          LOG_LEVEL: 'info',
          ...(withDiscord
            ? {
                DISCORD_TOKEN: guild.options.token,
                DISCORD_APP_ID: guild.options.applicationId,
                DISCORD_GUILD_ID: guild.options.guildId,
                DISCORD_CHANNEL_ID: guild.options.channelId,
                DISCORD_API_URL: discord!.apiUrl,
              }
            : {}),
        },
        context.workDir,
      );
      void proc.exited.then(context.defer(() => proc.kill()));
      await proc.waitFor('control process ready', 120_000);
      return proc;
    };
    const kill = async () => {
      await control?.kill();
      controlKills += 1;
    };
    const open = async (count: number, offset: number) => {
      const requests = await Promise.all(
        host!.vms.slice(offset, offset + count).map(async (vm) => {
          const outcome = await requestDelete(
            core,
            { vm: vm.name, host: host!.hostId, name: SNAPSHOT, requester: { id: 'snapctl:ada@chaos', userId: CHAOS_ADMIN.userId, displayName: 'ada' }, actor: CHAOS_ADMIN, origin: 'snapctl' },
            { timeoutMs: 120_000 },
          );
          if (outcome.kind !== 'pending') throw new Error(`the delete of ${vm.name} ran without approval`);
          return outcome.request;
        }),
      );
      opened += requests.length;
      return requests.map((request) => ({ id: request.id, expiresAtMs: Date.parse(request.expiresAt) }));
    };
    /** Redis's time when each request was first seen expired (polled). */
    const watchExpiry = async (requests: Array<{ id: string; expiresAtMs: number }>, timeoutMs: number) => {
      const seen = new Map<string, number>();
      const deadline = Date.now() + timeoutMs;
      while (seen.size < requests.length && Date.now() < deadline) {
        for (const request of requests) {
          if (seen.has(request.id)) continue;
          const state = await getApproval(core, request.id).catch(() => null);
          if (state && state.status !== 'pending') {
            seen.set(request.id, await redisNow(core));
            if (state.status !== 'expired') problems.push(`request ${request.id} became ${state.status}, not expired`);
          }
        }
        await sleep(100);
      }
      return seen;
    };

    // --- A: killed, started again before the requests expire ------------------------------
    control = await startControl();
    const openedAt = await redisNow(core);
    const first = await open(half, 0);
    // The control process posts requests opened outside Discord; let it, before it dies.
    await until(() => discord!.channelMessages(guild.options.channelId).length >= first.length, 'the requests to be posted', 30_000).catch(() =>
      notes.push('A: not every request was posted before the kill'),
    );
    await sleep(random.int(0, 500));
    context.log(`s3: SIGKILL the control process (pid ${control.pid}) with ${first.length} request(s) pending`);
    const killedAt = await redisNow(core);
    await kill();
    await sleep(random.int(300, 1_500));
    control = await startControl();
    const readyAt = await redisNow(core);
    const firstExpiry = Math.min(...first.map((request) => request.expiresAtMs));
    notes.push(
      `A: ${first.length} request(s) opened at 0 ms, expiring at +${firstExpiry - openedAt} ms or later; control process SIGKILLed at +${killedAt - openedAt} ms, ` +
        `a new one ready at +${readyAt - openedAt} ms (${readyAt <= firstExpiry ? 'before' : 'after'} the first expiry)`,
    );
    const seenA = await watchExpiry(first, options.ttlMinutes * 60_000 + 60_000);
    for (const request of first) {
      const at = seenA.get(request.id);
      if (at === undefined) {
        problems.push(`A: request ${request.id} still pending ${Math.round((Date.now() - request.expiresAtMs) / 1000)} s after its expiry, with a control process running`);
        continue;
      }
      const bound = Math.max(request.expiresAtMs, readyAt) + options.sweepIntervalMs + options.slackMs;
      lateness.push(at - request.expiresAtMs);
      if (at < request.expiresAtMs) problems.push(`A: request ${request.id} expired ${request.expiresAtMs - at} ms early`);
      if (at > bound) problems.push(`A: request ${request.id} expired ${at - request.expiresAtMs} ms after its expiry (bound: ${bound - request.expiresAtMs} ms)`);
    }
    // Its message lost its buttons (or they are disabled).
    for (const request of first) {
      const state = await getApproval(core, request.id);
      const message = state?.message ? discord.channelMessages(state.message.channelId).find((candidate) => candidate.id === state.message!.messageId) : undefined;
      if (message && liveButtons(message.components) > 0) problems.push(`A: the message of expired request ${request.id} still has live buttons`);
    }

    // --- B: killed, and no control process at expiry --------------------------------------
    const second = await open(half, half);
    context.log(`s3: SIGKILL the control process (pid ${control.pid}) with ${second.length} request(s) pending; none runs until they expired`);
    await kill();
    const lastExpiry = Math.max(...second.map((request) => request.expiresAtMs));
    await until(async () => (await redisNow(core)) >= lastExpiry + 500, 'the requests to pass their expiry', options.ttlMinutes * 60_000 + 30_000, 200);
    const late = await decideApproval(core, { id: second[0]!.id, actor: SECOND_ADMIN, decision: 'approve' });
    if (late.outcome !== 'expired') problems.push(`B: an approval after the expiry was ${late.outcome}, not refused as expired`);
    const stillPending = (await Promise.all(second.slice(1).map((request) => getApproval(core, request.id)))).filter((state) => state?.status === 'pending').length;
    // The control process without Discord (snapctl only) sweeps too: it expires them.
    const headless = await startControl(false);
    await sleep(2 * options.sweepIntervalMs + 500);
    const pendingUnderHeadless = (await Promise.all(second.slice(1).map((request) => getApproval(core, request.id)))).filter((state) => state?.status === 'pending').length;
    await headless.stop();
    if (pendingUnderHeadless > 0) problems.push(`B: ${pendingUnderHeadless} request(s) past expiry still pending after ${2 * options.sweepIntervalMs + 500} ms of a control process without Discord`);
    notes.push(
      `B: a late approval was ${late.outcome}; ${stillPending} other request(s) past expiry still read 'pending' with no control process, ` +
        `${pendingUnderHeadless} still after ${2 * options.sweepIntervalMs + 500} ms of a control process without Discord`,
    );
    const fresh = await context.connectCore(prefix, policy);
    const expiredNow = await expireDueApprovals(fresh);
    const states = await Promise.all(second.map((request) => getApproval(core, request.id)));
    const notExpired = states.filter((state: ApprovalState | null) => state?.status !== 'expired').length;
    if (notExpired > 0) problems.push(`B: ${notExpired} request(s) not expired after expireDueApprovals from a fresh core`);
    notes.push(`B: expireDueApprovals from a fresh core expired ${expiredNow.length}`);

    // --- nothing ran ---------------------------------------------------------------------
    const deletes = host.fake.calls().filter((call) => call.argv.includes('snapshot-delete')).length;
    if (deletes > 0) problems.push(`${deletes} snapshot-delete call(s) reached virsh`);
    for (const vm of host.vms) if (!host.snapshotsOf(vm).some((snapshot) => snapshot.name === SNAPSHOT)) problems.push(`${vm.name} lost its snapshot '${SNAPSHOT}'`);
    for (const request of [...first, ...second]) {
      const job = await core.queueFor(host.hostId).getJob(`approval-${request.id}`);
      if (job) problems.push(`request ${request.id} has a job (${await job.getState()})`);
    }
    notes.push(`expiry as measured (Redis's clock, polled every 100 ms): ${lateness.map((ms) => `+${ms} ms`).join(', ')} after expiresAt (bound: one sweep, ${options.sweepIntervalMs} ms, + ${options.slackMs} ms slack)`);
  } catch (error) {
    problems.push(`scenario error: ${(error as Error).stack ?? String(error)}`);
  } finally {
    await control?.stop().catch(() => undefined);
    await worker?.stop().catch(() => undefined);
    await discord?.stop().catch(() => undefined);
    await host?.dispose().catch(() => undefined);
  }
  const figures = { ...emptyFigures(), controlKills };
  notes.unshift(`${opened} approval request(s) for deletes opened (time to live ${options.ttlMinutes * 60} s); the control process was SIGKILLed ${controlKills} time(s)`);
  return {
    key: '3',
    title: 'control plane SIGKILL, approvals pending',
    ok: problems.length === 0 && opened === 2 * half,
    seed: random.seed,
    durationMs: Date.now() - started,
    figures,
    notes,
    problems,
  };
}

/** Buttons in a message's components that are not disabled. */
function liveButtons(components: unknown): number {
  if (!Array.isArray(components)) return 0;
  let live = 0;
  for (const row of components as Array<{ components?: Array<{ type?: number; disabled?: boolean }> }>) {
    for (const component of row.components ?? []) if (component.type === 2 && !component.disabled) live += 1;
  }
  return live;
}

