/**
 * A fake Discord for unit tests of its rules, spoken to in raw HTTP (fetch) the way
 * Discord is, plus a raw gateway session so interactions can be sent.
 */
import WebSocket from 'ws';
import { FakeDiscord, Permission, snowflake, type FakeDiscordOptions } from '../../fixtures/fake-discord/fake-discord.js';

export interface HttpReply {
  status: number;
  body: unknown;
  headers: Headers;
}

export interface FakeHttp {
  fake: FakeDiscord;
  options: FakeDiscordOptions;
  userId: string;
  /** Sends one request under /api/v10; JSON body, or multipart with `payload_json` when files are given. */
  call(method: string, path: string, body?: unknown, extra?: { files?: Array<{ name: string; data: Buffer }>; auth?: boolean }): Promise<HttpReply>;
  /** Identifies on the gateway (needed before the fake can send interactions). */
  connectGateway(): Promise<void>;
  guildCommands: string;
  channelMessages: string;
  stop(): Promise<void>;
}

export async function startFakeHttp(overrides: Partial<FakeDiscordOptions> = {}): Promise<FakeHttp> {
  const userId = snowflake();
  const options: FakeDiscordOptions = {
    token: 'unit-token.AAAA.BBBB',
    applicationId: snowflake(),
    guildId: snowflake(),
    channelId: snowflake(),
    roles: [{ id: snowflake(), name: 'ops', permissions: Permission.SendMessages }],
    users: [{ id: userId, username: 'ursula', roles: [] }],
    rateLimits: false,
    ...overrides,
  };
  const fake = await FakeDiscord.start(options);
  let socket: WebSocket | undefined;
  return {
    fake,
    options,
    userId,
    guildCommands: `/applications/${options.applicationId}/guilds/${options.guildId}/commands`,
    channelMessages: `/channels/${options.channelId}/messages`,
    async call(method, path, body, extra = {}) {
      const headers: Record<string, string> = {};
      if (extra.auth !== false) headers['authorization'] = `Bot ${options.token}`;
      let payload: string | FormData | undefined;
      if (extra.files) {
        const form = new FormData();
        extra.files.forEach((file, index) => form.append(`files[${index}]`, new Blob([file.data]), file.name));
        if (body !== undefined) form.append('payload_json', JSON.stringify(body));
        payload = form;
      } else if (body !== undefined) {
        headers['content-type'] = 'application/json';
        payload = JSON.stringify(body);
      }
      const res = await fetch(`${fake.apiUrl}/v10${path}`, { method, headers, ...(payload !== undefined ? { body: payload } : {}) });
      const text = await res.text();
      return { status: res.status, body: text ? (JSON.parse(text) as unknown) : undefined, headers: res.headers };
    },
    async connectGateway() {
      const info = (await (await fetch(`${fake.apiUrl}/v10/gateway`)).json()) as { url: string };
      const ws = new WebSocket(`${info.url}?v=10&encoding=json`);
      socket = ws;
      await new Promise<void>((resolve, reject) => {
        ws.on('error', reject);
        ws.on('message', (raw) => {
          const frame = JSON.parse(String(raw)) as { op: number; t?: string };
          if (frame.op === 10) ws.send(JSON.stringify({ op: 2, d: { token: options.token, intents: 1, properties: {} } }));
          if (frame.t === 'READY') resolve();
        });
      });
    },
    async stop() {
      socket?.close();
      await fake.stop();
    },
  };
}

/** The `_errors` codes at a dotted path of a 50035 body (`0.options.2.name`). */
export function errorsAt(body: unknown, path: string): string[] {
  let node: unknown = (body as { errors?: unknown }).errors;
  for (const key of path === '' ? [] : path.split('.')) node = (node as Record<string, unknown> | undefined)?.[key];
  const list = (node as { _errors?: Array<{ code: string }> } | undefined)?._errors ?? [];
  return list.map((e) => e.code);
}

/** A minimal valid CHAT_INPUT command. */
export function chatCommand(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { name: 'snapshot', description: 'Manage snapshots', type: 1, ...extra };
}

/** A string option; `required` defaults to false. */
export function stringOption(name: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { type: 3, name, description: `the ${name}`, ...extra };
}
