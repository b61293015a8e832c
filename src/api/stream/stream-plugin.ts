/**
 * `GET /api/stream`: a live stream (Server-Sent Events) of changes to the objects the caller may see —
 * reports and NGSI-LD entities. Each event names the object (kind, id), never its content: the client
 * reads it through the API, under the policy. The one policy decides who is told, at delivery time, with
 * the caller's current read keys: a marking change takes effect at once (a reader who loses sight of an
 * object is told `removed`), and keys are refreshed while the stream is open (a revoked token ends it).
 */
import type { FastifyPluginAsync, FastifyReply } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import type { EventBus, PlatformEvent } from '../../ports/event-bus.ts';
import type { Principal } from '../http/principal.ts';

export interface StreamApiOptions {
  bus: EventBus;
  /** Re-checks the caller's token and recomputes its read keys while the stream is open. */
  authenticate: (authorization: string) => Promise<Principal>;
  /** How often the caller's keys are refreshed (default 10 s). */
  refreshMs?: number;
  /** Comment lines that keep proxies from closing an idle stream (default 15 s). */
  heartbeatMs?: number;
  /** Streams one instance serves at most (default 1,000). */
  maxClients?: number;
  /** Bytes a slow client may have waiting before its stream is closed (default 1 MiB). */
  maxBuffered?: number;
}

interface Client {
  reply: FastifyReply;
  authorization: string;
  keys: Set<string>;
  kinds: Set<string>;
  timer: NodeJS.Timeout;
}

interface Change {
  kind: 'report' | 'entity';
  id: string;
  tenant?: string;
  type?: string[];
  readKeys: string[];
  previousReadKeys: string[];
  deleted: boolean;
}

/** The local names of expanded type IRIs, for clients that filter. */
function localNames(types: unknown): string[] {
  if (!Array.isArray(types)) return [];
  return types.map((t) =>
    String(t).slice(Math.max(String(t).lastIndexOf('#'), String(t).lastIndexOf('/')) + 1),
  );
}

/** What an event says about which object changed and who could see it before and after. */
export function changeOf(event: PlatformEvent): Change | undefined {
  const d = event.data as Record<string, unknown>;
  const strings = (v: unknown) => (Array.isArray(v) ? v.map(String) : []);
  if (event.type.startsWith('report.')) {
    return {
      kind: 'report',
      id: String(d.id),
      readKeys: strings(d.readKeys),
      previousReadKeys: strings(d.previousReadKeys),
      deleted: event.type === 'report.deleted',
    };
  }
  if (event.type.startsWith('context.entity.')) {
    const base = {
      kind: 'entity' as const,
      id: String(d.entityId),
      tenant: String(d.tenant ?? ''),
      type: localNames(d.entityType),
    };
    if (event.type === 'context.entity.marking_changed') {
      return {
        ...base,
        readKeys: strings(d.readKeys),
        previousReadKeys: strings(d.previousReadKeys),
        deleted: false,
      };
    }
    if (event.type === 'context.entity.deleted') {
      return { ...base, readKeys: [], previousReadKeys: strings(d.readKeys), deleted: true };
    }
    // created / updated: the keys after the change; a marking change also comes as marking_changed.
    return { ...base, readKeys: strings(d.readKeys), previousReadKeys: [], deleted: false };
  }
  return undefined;
}

const meets = (keys: Set<string>, objectKeys: string[]) => objectKeys.some((k) => keys.has(k));

export const streamApi: FastifyPluginAsync<StreamApiOptions> = async (app, opts) => {
  const clients = new Set<Client>();
  const refreshMs = opts.refreshMs ?? 10_000;
  const maxClients = opts.maxClients ?? 1000;
  const maxBuffered = opts.maxBuffered ?? 1024 * 1024;
  let seq = 0;

  const end = (c: Client) => {
    clearInterval(c.timer);
    clients.delete(c);
    if (!c.reply.raw.writableEnded) c.reply.raw.end();
  };

  const send = (c: Client, event: string, data: unknown) => {
    if (c.reply.raw.writableEnded) return end(c);
    if (c.reply.raw.writableLength > maxBuffered) {
      // A client that does not read must not hold memory or slow the others.
      c.reply.raw.write('event: error\ndata: {"reason":"too slow: events were not read in time"}\n\n');
      return end(c);
    }
    seq += 1;
    c.reply.raw.write(`id: ${seq}\nevent: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };

  const subscription = await opts.bus.subscribe(
    { types: ['report.>', 'context.entity.>'], mode: 'broadcast' },
    async (event) => {
      const change = changeOf(event);
      if (!change) return;
      const body = {
        kind: change.kind,
        id: change.id,
        ...(change.tenant !== undefined ? { tenant: change.tenant } : {}),
        ...(change.type ? { type: change.type } : {}),
      };
      for (const c of clients) {
        if (!c.kinds.has(change.kind)) continue;
        const now = meets(c.keys, change.readKeys);
        const before = meets(c.keys, change.previousReadKeys);
        if (now) send(c, `${change.kind}.changed`, body);
        else if (before) send(c, `${change.kind}.removed`, body);
      }
    },
  );

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
          'Live changes (Server-Sent Events) to the reports and entities the caller may see: events report.changed, report.removed, entity.changed, entity.removed with {kind, id}; read the object through the API',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            kinds: {
              type: 'string',
              pattern: '^(report|entity)(,(report|entity))*$',
              description: 'report,entity (default both)',
            },
          },
        },
      },
    },
    async (request, reply) => {
      const principal = request.principal;
      const authorization = request.headers.authorization;
      if (!principal || !authorization) throw new AppError('AUTH_TOKEN_MISSING');
      if (clients.size >= maxClients)
        throw new AppError('PLATFORM_UNAVAILABLE', 'too many live streams on this instance; retry');
      reply.hijack();
      reply.raw.writeHead(200, {
        'content-type': 'text/event-stream; charset=utf-8',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
        'x-accel-buffering': 'no',
      });
      reply.raw.write(`retry: 3000\nevent: ready\ndata: ${JSON.stringify({ user: principal.username })}\n\n`);
      const client: Client = {
        reply,
        authorization,
        keys: new Set(principal.readKeys),
        kinds: new Set((request.query.kinds ?? 'report,entity').split(',')),
        timer: setInterval(
          () => {
            opts.authenticate(authorization).then(
              (p) => {
                client.keys = new Set(p.readKeys);
                if (!reply.raw.writableEnded) reply.raw.write(': keep-alive\n\n');
              },
              (e: unknown) => {
                const code = e instanceof AppError ? e.code : 'AUTH_TOKEN_INVALID';
                reply.raw.write(`event: error\ndata: ${JSON.stringify({ code })}\n\n`);
                end(client);
              },
            );
          },
          Math.min(refreshMs, opts.heartbeatMs ?? 15_000),
        ),
      };
      client.timer.unref();
      clients.add(client);
      request.raw.on('close', () => end(client));
    },
  );
};
