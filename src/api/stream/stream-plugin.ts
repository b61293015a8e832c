/**
 * `GET /api/stream`: a live stream (Server-Sent Events) of changes to the marked objects the caller may see,
 * of every kind declared at the sharing gate (reports, closures, …) and NGSI-LD entities. Each event names the
 * object (kind, id) and carries its marking (`marking`: the label form of docs/access.md, and `ownerOrg`) —
 * never its content: the client reads the object through the API, under the policy.
 *
 * Who is told is the gate's decision (`canSee`), at delivery time, with the caller's read keys as the
 * directory stands at that moment (`readKeysFor`: a client declared or dropped counts at once): a
 * marking change takes effect at once (a reader who loses sight of an object is told `removed`, under the
 * label it saw). The stream is a live session: disabling the account, revoking its token or changing its
 * password ends it within seconds on every instance (src/modules/access/live-sessions.ts).
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import type { LiveSession, OpenSession } from '../../modules/access/index.ts';
import { type Marking, markingLabel, TLP_RANK } from '../../modules/sharing/index.ts';
import type { EventBus, PlatformEvent } from '../../ports/event-bus.ts';
import type { Principal } from '../http/principal.ts';

/** What the stream needs of the sharing gate. */
export interface StreamGate {
  /** The one visibility decision in memory. */
  canSee(p: { readKeys: readonly string[] }, o: { readKeys: readonly string[] }): boolean;
  /** A user's read keys as the directory stands now (a new client or community member counts at once). */
  readKeysFor(who: { userId: string; orgId: string }): Promise<string[]>;
  /** The kinds of marked objects declared at the gate. */
  kinds(): string[];
}

/** What the stream needs of the live sessions (src/modules/access/live-sessions.ts). */
export interface StreamSessions {
  open(input: OpenSession): LiveSession;
}

export interface StreamApiOptions {
  bus: EventBus;
  gate: StreamGate;
  sessions: StreamSessions;
  /** Comment lines that keep proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
  /** Streams one instance serves at most (default 1,000). */
  maxClients?: number;
  /** Bytes a slow client may have waiting before its stream is closed (default 1 MiB). */
  maxBuffered?: number;
}

/** The kind NGSI-LD entities have on the stream (their events are the context module's own). */
export const ENTITY_KIND = 'entity';

interface Client {
  reply: FastifyReply;
  principal: Principal;
  kinds: Set<string>;
  session: LiveSession | undefined;
  heartbeat: NodeJS.Timeout;
}

/** Which object changed, who could see it before and after, and under which markings. */
export interface Change {
  kind: string;
  id: string;
  tenant?: string;
  type?: string[];
  ownerOrg: string;
  readKeys: string[];
  previousReadKeys: string[];
  marking: Marking;
  previousMarking: Marking;
}

/** The local names of expanded type IRIs, for clients that filter. */
function localNames(types: unknown): string[] {
  if (!Array.isArray(types)) return [];
  return types.map((t) =>
    String(t).slice(Math.max(String(t).lastIndexOf('#'), String(t).lastIndexOf('/')) + 1),
  );
}

const strings = (v: unknown): string[] | undefined =>
  Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined;

/** A marking the stream can label; anything else is not sent (an unlabelled object never leaves). */
function markingOf(v: unknown): Marking | undefined {
  const m = v as { tlp?: unknown } | null | undefined;
  return typeof m?.tlp === 'string' && m.tlp in TLP_RANK ? (v as Marking) : undefined;
}

/**
 * What an event says about a marked object: the context module's entity events, or any event whose data is
 * an object change (`{kind, id, ownerOrg, readKeys, previousReadKeys, marking, previousMarking?}`, as reports
 * and closures publish). Undefined for every other event.
 */
export function changeOf(event: PlatformEvent): Change | undefined {
  const d = (event.data ?? {}) as Record<string, unknown>;
  if (typeof d !== 'object') return undefined;
  if (event.type.startsWith('context.entity.')) {
    const marking = markingOf(d.marking);
    const readKeys = strings(d.readKeys);
    if (typeof d.entityId !== 'string' || typeof d.ownerOrg !== 'string' || !marking || !readKeys)
      return undefined;
    const base = {
      kind: ENTITY_KIND,
      id: d.entityId,
      tenant: String(d.tenant ?? ''),
      type: localNames(d.entityType),
      ownerOrg: d.ownerOrg,
    };
    if (event.type === 'context.entity.marking_changed') {
      return {
        ...base,
        readKeys,
        previousReadKeys: strings(d.previousReadKeys) ?? [],
        marking,
        previousMarking: markingOf(d.previous) ?? marking,
      };
    }
    if (event.type === 'context.entity.deleted') {
      return { ...base, readKeys: [], previousReadKeys: readKeys, marking, previousMarking: marking };
    }
    // Created or updated: the keys after the change; a marking change also comes as marking_changed.
    return { ...base, readKeys, previousReadKeys: [], marking, previousMarking: marking };
  }
  const readKeys = strings(d.readKeys);
  const previousReadKeys = strings(d.previousReadKeys);
  const marking = markingOf(d.marking);
  if (
    typeof d.kind !== 'string' ||
    typeof d.id !== 'string' ||
    typeof d.ownerOrg !== 'string' ||
    !readKeys ||
    !previousReadKeys ||
    !marking
  )
    return undefined;
  return {
    kind: d.kind,
    id: d.id,
    ...(typeof d.scope === 'string' && d.scope ? { tenant: d.scope } : {}),
    ownerOrg: d.ownerOrg,
    readKeys,
    previousReadKeys,
    marking,
    previousMarking: markingOf(d.previousMarking) ?? marking,
  };
}

export const streamApi: FastifyPluginAsync<StreamApiOptions> = async (app, opts) => {
  const { gate } = opts;
  const clients = new Set<Client>();
  const maxClients = opts.maxClients ?? 1000;
  const maxBuffered = opts.maxBuffered ?? 1024 * 1024;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  /** The kinds a client may ask for: every kind declared at the gate, and entities. */
  const streamKinds = () => [...new Set([...gate.kinds(), ENTITY_KIND])].sort();
  let seq = 0;

  const end = (c: Client) => {
    clearInterval(c.heartbeat);
    clients.delete(c);
    c.session?.close();
    if (!c.reply.raw.writableEnded) c.reply.raw.end();
  };

  const write = (c: Client, event: string, data: unknown) => {
    seq += 1;
    c.reply.raw.write(`id: ${seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const send = (c: Client, event: string, data: unknown) => {
    if (c.reply.raw.writableEnded) return end(c);
    if (c.reply.raw.writableLength > maxBuffered) {
      // A client that does not read must not hold memory or slow the others.
      c.reply.raw.write('event: error\ndata: {"reason":"too slow: events were not read in time"}\n\n');
      return end(c);
    }
    write(c, event, data);
  };

  const subscription = await opts.bus.subscribe({ types: ['>'], mode: 'broadcast' }, async (event) => {
    if (clients.size === 0) return;
    const change = changeOf(event);
    if (!change) return;
    const about = {
      kind: change.kind,
      id: change.id,
      ...(change.tenant !== undefined ? { tenant: change.tenant } : {}),
      ...(change.type ? { type: change.type } : {}),
      ownerOrg: change.ownerOrg,
    };
    const now = { readKeys: change.readKeys };
    const before = { readKeys: change.previousReadKeys };
    let changed: unknown;
    let removed: unknown;
    for (const c of clients) {
      if (!c.kinds.has(change.kind) || (c.session && !c.session.active)) continue;
      // The keys of now, not of when the stream opened or was last checked: the directory may have changed
      // since (a client declared or dropped, a community member added or removed).
      const reader = { readKeys: await gate.readKeysFor(c.principal) };
      if (!c.kinds.has(change.kind) || (c.session && !c.session.active)) continue;
      if (gate.canSee(reader, now)) {
        changed ??= { ...about, marking: markingLabel([change]) };
        send(c, `${change.kind}.changed`, changed);
      } else if (gate.canSee(reader, before)) {
        // Under the label the reader saw: the new one is not its to know.
        removed ??= {
          ...about,
          marking: markingLabel([{ marking: change.previousMarking, ownerOrg: change.ownerOrg }]),
        };
        send(c, `${change.kind}.removed`, removed);
      }
    }
  });

  app.addHook('preClose', async () => {
    for (const c of clients) {
      c.reply.raw.write('event: closing\ndata: {"reason":"the instance is shutting down; reconnect"}\n\n');
      end(c);
    }
    await subscription.unsubscribe();
  });

  app.get<{ Querystring: { kinds?: string } }>(
    '/api/stream',
    {
      schema: {
        tags: ['live'],
        summary:
          'Live changes (Server-Sent Events) to the marked objects the caller may see: events <kind>.changed and <kind>.removed (report, entity, and every other kind of marked object) with {kind, id, marking, ownerOrg}; read the object through the API. The stream ends when the session does (account disabled, token revoked, password changed)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            kinds: {
              type: 'string',
              maxLength: 500,
              pattern: '^[A-Za-z0-9_-]+(,[A-Za-z0-9_-]+)*$',
              description: 'comma-separated kinds of objects, e.g. report,entity (default: every kind)',
            },
          },
        },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      const authorization = request.headers.authorization;
      if (!principal || !authorization) throw new AppError('AUTH_TOKEN_MISSING');
      const known = streamKinds();
      const kinds = request.query.kinds ? request.query.kinds.split(',') : known;
      const unknown = kinds.filter((k) => !known.includes(k));
      if (unknown.length > 0) {
        throw new AppError(
          'PLATFORM_VALIDATION_FAILED',
          `unknown kind ${unknown.join(', ')}: the stream carries ${known.join(', ')}`,
        );
      }
      if (clients.size >= maxClients)
        throw new AppError('PLATFORM_UNAVAILABLE', 'too many live streams on this instance; retry');
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      reply.raw.write(
        `retry: 3000\nevent: ready\ndata: ${JSON.stringify({ user: principal.username, kinds })}\n\n`,
      );
      const client: Client = {
        reply,
        principal,
        kinds: new Set(kinds),
        session: undefined,
        heartbeat: setInterval(() => {
          if (!reply.raw.writableEnded) reply.raw.write(': keep-alive\n\n');
        }, heartbeatMs),
      };
      client.heartbeat.unref();
      clients.add(client);
      client.session = opts.sessions.open({
        authorization,
        principal,
        refreshed: (p) => {
          client.principal = p;
        },
        ended: (why) => {
          if (!reply.raw.writableEnded) {
            write(client, 'error', { code: why.code, detail: why.message });
          }
          end(client);
        },
      });
      request.raw.on('close', () => end(client));
    },
  );
};
