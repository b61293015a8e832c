/**
 * The live NGSI-LD surface: subscriptions (clause 6.10, 6.11), the temporal API (clause 6.18, 6.19) and
 * the HTTP IoT ingestion endpoint (docs/iot-ingestion.md). An encapsulated plugin with its own content
 * types and error handler (NGSI-LD ProblemDetails). Register it without a prefix: its routes are
 * /ngsi-ld/v1/subscriptions..., /ngsi-ld/v1/temporal/entities... and /ingest/v1/....
 *
 * Who may do what is the module's (the sharing gate's) decision; temporal answers carry the label of what
 * they hold in the `SafeCity-Marking` header (docs/ngsi-ld.md, "Markings on the way out").
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import { parseProjection, reachesLinked } from '../../modules/context/index.ts';
import type { ContextLive, IngestPrincipal, JsonLdContext } from '../../modules/context-live/index.ts';
import { MARKING_HEADER } from '../../modules/sharing/index.ts';
import { bodyText, jsonBodyParser } from '../http/json-body.ts';
import type {} from '../http/principal.ts';
import { edgeValidatorCompiler } from '../http/validation.ts';
import {
  ngsiLdErrorHandler,
  paginationLinks,
  refuseUnknownParameters,
  requireUriParam,
} from '../ngsi-ld/index.ts';
import { CONSUMES, PAYLOADS, queryOf } from '../ngsi-ld/openapi.ts';
import {
  answerType,
  contextFromLink,
  listParam,
  negotiate,
  pageOf,
  principalOf,
  type ResponseType,
  readerOf,
  splitPayload,
  tenantOf,
} from './live-request.ts';
import { type TemporalQueryInput, temporalQueryPayload } from './temporal-query-payload.ts';

export interface NgsiLdLivePluginOptions {
  live: ContextLive;
  /** Largest payload accepted (default 1 MiB; ingestion messages are limited to 256 KiB anyway). */
  bodyLimit?: number;
}

const TEMPORAL_PARAMETERS = [
  'timerel',
  'timeAt',
  'endTimeAt',
  'timeproperty',
  'lastN',
  'options',
  'format',
  'aggrMethods',
  'aggrPeriodDuration',
  'q',
  'georel',
  'geometry',
  'coordinates',
  'geoproperty',
  'scopeQ',
  // Refused by the module (422) rather than ignored: an unfiltered answer to a filtered question is wrong.
  'csf',
  'orderBy',
] as const;

/**
 * `pick` and `omit` of a temporal read (clause 4.21): member names (`id`, `type`, attributes); with `attrs`,
 * or naming one member in both, 400 BadRequestData (ETSI tests 020_22). Braces name members of linked
 * entities, which temporal reads do not join: 400 too. `datasetId`, which chooses instances as these choose
 * members, is not implemented on temporal reads: 422.
 */
function temporalProjection(query: Record<string, unknown>): { pick?: string[]; omit?: string[] } {
  const bad = (why: string) => new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', why);
  const names = (param: 'pick' | 'omit'): string[] | undefined => {
    const v = query[param];
    if (v === undefined || v === '') return undefined;
    let tree: ReturnType<typeof parseProjection>;
    try {
      tree = parseProjection(String(v), param);
    } catch (e) {
      throw bad(e instanceof Error ? e.message : String(e));
    }
    if (reachesLinked(tree)) throw bad(`${param}: temporal reads join no linked entities (no braces)`);
    return [...tree.keys()];
  };
  if (query.datasetId !== undefined) {
    // Defined by the standard for temporal reads, not implemented here: refused, never ignored.
    throw new AppError('CONTEXT_LIVE_UNSUPPORTED', 'datasetId is not supported on temporal reads');
  }
  const pick = names('pick');
  const omit = names('omit');
  if ((pick || omit) && listParam(query.attrs)) {
    throw bad(`attrs cannot be combined with ${pick ? 'pick' : 'omit'}: both choose the members shown`);
  }
  const both = pick?.filter((m) => omit?.includes(m)) ?? [];
  if (both.length > 0) throw bad(`pick and omit both name ${both.join(', ')}`);
  return { ...(pick ? { pick } : {}), ...(omit ? { omit } : {}) };
}

const PAYLOAD_TYPES = ['application/json', 'application/ld+json', 'application/merge-patch+json'];
const SUBSCRIPTIONS = '/ngsi-ld/v1/subscriptions';
const TEMPORAL = '/ngsi-ld/v1/temporal/entities';

export async function ngsiLdLivePlugin(app: FastifyInstance, opts: NgsiLdLivePluginOptions): Promise<void> {
  const { live } = opts;
  const bodyLimit = opts.bodyLimit ?? 1024 * 1024;
  app.removeAllContentTypeParsers();
  const parseJson = jsonBodyParser({ malformed: (m) => new AppError('CONTEXT_INVALID_JSON', m) });
  app.addContentTypeParser(PAYLOAD_TYPES, { parseAs: 'buffer', bodyLimit }, (request, body, done) => {
    // Ingestion keeps the raw text: a malformed message is dead-lettered as it came, not refused here;
    // only what cannot be text at all (not UTF-8, NUL characters) is refused at the edge.
    if (request.url.startsWith('/ingest/')) {
      let text: string;
      try {
        text = bodyText(request, body as Buffer);
      } catch (e) {
        done(e as Error, undefined);
        return;
      }
      done(null, text);
      return;
    }
    parseJson(request, body as Buffer, done);
  });
  app.setValidatorCompiler(edgeValidatorCompiler({ documentedBodies: true }));
  app.setErrorHandler(ngsiLdErrorHandler);
  app.addHook('onRequest', async (request) => {
    const route = request.routeOptions.url ?? '';
    const id = (request.params as { id?: string } | undefined)?.id;
    if (route.startsWith(`${SUBSCRIPTIONS}/`)) requireUriParam(id, 'subscription');
    else if (route.startsWith(`${TEMPORAL}/`)) requireUriParam(id, 'entity');
  });
  // NGSI-LD operations only: ingestion (/ingest/v1) is the platform's own surface.
  app.addHook('preValidation', async (request) => {
    if ((request.routeOptions.url ?? '').startsWith('/ngsi-ld/')) refuseUnknownParameters(request);
  });
  const tags = ['NGSI-LD'];

  // ------------------------------------------------------------------------------------ subscriptions
  app.post(
    SUBSCRIPTIONS,
    { schema: { tags, summary: 'Create a subscription', body: PAYLOADS.subscription, consumes: CONSUMES } },
    async (request, reply) => {
      const { body, context } = splitPayload(request, request.body);
      const rec = await live.subscriptions.create(tenantOf(request), principalOf(request), body, context, {
        contextBase: `${request.protocol}://${request.host}/ngsi-ld/v1/jsonldContexts`,
      });
      reply.header('Location', `${SUBSCRIPTIONS}/${encodeURIComponent(rec.spec.id)}`);
      reply.status(201).send();
    },
  );

  app.get(
    SUBSCRIPTIONS,
    {
      schema: {
        tags,
        summary: 'List subscriptions',
        querystring: queryOf('limit', 'offset', 'count', 'options'),
      },
    },
    async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const type = negotiate(request);
      const page = pageOf(query);
      const { items, total } = await live.subscriptions.list(tenantOf(request), principalOf(request), page);
      const context = linkContext(request);
      if (query.count === 'true') reply.header('NGSILD-Results-Count', String(total));
      answerType(reply, type, context);
      paginationLinks(request, reply, SUBSCRIPTIONS, { ...page, more: page.offset + items.length < total });
      return Promise.all(
        items.map((r) =>
          live.subscriptions.view(r, context, {
            includeContext: type === 'application/ld+json',
            sysAttrs: hasOption(query.options, 'sysAttrs'),
          }),
        ),
      );
    },
  );

  app.get(
    `${SUBSCRIPTIONS}/:id`,
    { schema: { tags, summary: 'Retrieve a subscription', querystring: queryOf('options') } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const type = negotiate(request);
      const rec = await live.subscriptions.get(tenantOf(request), principalOf(request), id);
      const context = linkContext(request);
      answerType(reply, type, context ?? rec.spec.jsonldContext);
      return live.subscriptions.view(rec, context, {
        includeContext: type === 'application/ld+json',
        sysAttrs: hasOption((request.query as Record<string, unknown>).options, 'sysAttrs'),
      });
    },
  );

  app.patch(
    `${SUBSCRIPTIONS}/:id`,
    {
      schema: {
        tags,
        summary: 'Update a subscription',
        body: PAYLOADS.subscriptionPatch,
        consumes: CONSUMES,
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const { body, context } = splitPayload(request, request.body);
      await live.subscriptions.update(tenantOf(request), principalOf(request), id, body, context);
      reply.status(204).send();
    },
  );

  app.delete(
    `${SUBSCRIPTIONS}/:id`,
    { schema: { tags, summary: 'Delete a subscription' } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      await live.subscriptions.delete(tenantOf(request), principalOf(request), id);
      reply.status(204).send();
    },
  );

  // ---------------------------------------------------------------------------------------- temporal
  const temporalParams = (query: Record<string, unknown>): Record<string, string | undefined> => {
    const out: Record<string, string | undefined> = {};
    for (const k of TEMPORAL_PARAMETERS) {
      if (query[k] !== undefined) out[k] = String(query[k]);
    }
    return out;
  };

  /**
   * Query Temporal Evolution of Entities (clause 5.7.4), by GET or by POST: one path for both, so the
   * selection, the gate's visibility (the history's and the temporal entity's read keys, in SQL), the
   * representation, the projection, the instance pagination (206 + Content-Range) are the same; the page
   * links are the GET's (a POST has no URL to link to).
   */
  const answerTemporalQuery = async (
    request: FastifyRequest,
    reply: FastifyReply,
    query: TemporalQueryInput,
    page: { limit: number; offset: number },
    context: JsonLdContext | undefined,
    type: ResponseType,
  ) => {
    if (
      !query.types &&
      !query.ids &&
      !query.attrs &&
      query.idPattern === undefined &&
      query.params.q === undefined &&
      query.params.scopeQ === undefined &&
      query.params.georel === undefined
    ) {
      throw new AppError(
        'CONTEXT_LIVE_TEMPORAL_QUERY_INVALID',
        'a temporal query needs type, id, idPattern, attrs, q, scopeQ or a geo-query',
      );
    }
    const answer = await live.temporal.query(
      tenantOf(request),
      readerOf(request),
      { ...query, limit: page.limit, offset: page.offset },
      context,
    );
    answerType(reply, type, context);
    if (request.method === 'GET') {
      paginationLinks(request, reply, TEMPORAL, { ...page, more: answer.more === true });
    }
    if (answer.count !== undefined) reply.header('NGSILD-Results-Count', String(answer.count));
    if (answer.marking) reply.header(MARKING_HEADER, answer.marking);
    if (answer.range) reply.status(206).header('Content-Range', answer.range);
    const list = answer.value;
    return type === 'application/ld+json' ? list.map((e) => ({ ...e, '@context': context ?? CORE })) : list;
  };

  app.get(
    TEMPORAL,
    {
      schema: {
        tags,
        summary: 'Query the temporal evolution of entities',
        querystring: queryOf(
          'type',
          'id',
          'idPattern',
          'attrs',
          'pick',
          'omit',
          'limit',
          'offset',
          'count',
          'local',
          'datasetId',
          ...TEMPORAL_PARAMETERS,
        ),
      },
    },
    async (request, reply) => {
      const query = request.query as Record<string, unknown>;
      const type = negotiate(request);
      const types = listParam(query.type);
      const ids = listParam(query.id);
      const attrs = listParam(query.attrs);
      const idPattern = query.idPattern === undefined ? undefined : String(query.idPattern);
      return answerTemporalQuery(
        request,
        reply,
        {
          ...(types ? { types } : {}),
          ...(ids ? { ids } : {}),
          ...(attrs ? { attrs } : {}),
          ...temporalProjection(query),
          ...(idPattern !== undefined ? { idPattern } : {}),
          ...(String(query.count) === 'true' ? { count: true } : {}),
          params: temporalParams(query),
        },
        pageOf(query),
        linkContext(request),
        type,
      );
    },
  );

  // Query Temporal Evolution of Entities by POST (clause 6.24): a Query payload (clause 5.2.23) with its
  // TemporalQuery (clause 5.2.21) in `temporalQ`; the representation and the page in the query string.
  app.post(
    '/ngsi-ld/v1/temporal/entityOperations/query',
    {
      schema: {
        tags,
        summary: 'Query the temporal evolution of entities with a Query payload',
        body: PAYLOADS.temporalQuery,
        consumes: CONSUMES,
        querystring: queryOf('limit', 'offset', 'count', 'options', 'format', 'local'),
      },
    },
    async (request, reply) => {
      const type = negotiate(request);
      const query = request.query as Record<string, unknown>;
      const { body, context } = splitPayload(request, request.body);
      const { selection, projection } = temporalQueryPayload(body);
      for (const k of ['options', 'format'] as const) {
        if (query[k] !== undefined) selection.params[k] = String(query[k]);
      }
      // pick and omit as the GET reads them (the same checks: with attrs, or one member in both, 400).
      const projected = temporalProjection({ ...projection, attrs: selection.attrs?.join(',') });
      return answerTemporalQuery(
        request,
        reply,
        { ...selection, ...projected, ...(String(query.count) === 'true' ? { count: true } : {}) },
        pageOf(query),
        context,
        type,
      );
    },
  );

  app.get(
    `${TEMPORAL}/:id`,
    {
      schema: {
        tags,
        summary: 'Retrieve the temporal evolution of an entity',
        querystring: queryOf('attrs', 'pick', 'omit', 'local', 'datasetId', ...TEMPORAL_PARAMETERS),
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const query = request.query as Record<string, unknown>;
      const type = negotiate(request);
      const attrs = listParam(query.attrs);
      const context = linkContext(request);
      const answer = await live.temporal.getEntity(
        tenantOf(request),
        readerOf(request),
        id,
        { ...(attrs ? { attrs } : {}), ...temporalProjection(query), params: temporalParams(query) },
        context,
      );
      answerType(reply, type, context);
      if (answer.marking) reply.header(MARKING_HEADER, answer.marking);
      if (answer.range) reply.status(206).header('Content-Range', answer.range);
      const e = answer.value;
      return type === 'application/ld+json' ? { ...e, '@context': context ?? CORE } : e;
    },
  );

  // Provision (clause 6.18.3.1, 6.19, 6.20, 6.21, 6.22): temporal entities are marked objects of their own.
  app.post(
    TEMPORAL,
    {
      schema: {
        tags,
        summary: 'Create or update the temporal evolution of an entity',
        body: PAYLOADS.temporalEntity,
        consumes: CONSUMES,
      },
    },
    async (request, reply) => {
      const { body, context } = splitPayload(request, request.body);
      const r = await live.temporalEntities.upsert(tenantOf(request), principalOf(request), body, context);
      if (r.created) {
        reply.header('Location', `${TEMPORAL}/${encodeURIComponent(r.id)}`);
        reply.status(201).send();
      } else reply.status(204).send();
    },
  );

  app.post(
    `${TEMPORAL}/:id/attrs`,
    {
      schema: {
        tags,
        summary: 'Add attribute instances to a temporal entity',
        body: PAYLOADS.temporalFragment,
        consumes: CONSUMES,
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      const { body, context } = splitPayload(request, request.body);
      await live.temporalEntities.append(tenantOf(request), principalOf(request), id, body, context);
      reply.status(204).send();
    },
  );

  app.patch(
    `${TEMPORAL}/:id/attrs/:attrId/:instanceId`,
    {
      schema: {
        tags,
        summary: 'Modify an attribute instance of a temporal entity',
        body: PAYLOADS.temporalInstance,
        consumes: CONSUMES,
      },
    },
    async (request, reply) => {
      const { id, attrId, instanceId } = request.params as { id: string; attrId: string; instanceId: string };
      const { body, context } = splitPayload(request, request.body);
      await live.temporalEntities.modifyInstance(
        tenantOf(request),
        principalOf(request),
        id,
        attrId,
        instanceId,
        body,
        context,
      );
      reply.status(204).send();
    },
  );

  app.delete(
    `${TEMPORAL}/:id`,
    { schema: { tags, summary: 'Delete a temporal entity and its history' } },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      await live.temporalEntities.deleteEntity(tenantOf(request), principalOf(request), id);
      reply.status(204).send();
    },
  );

  app.delete(
    `${TEMPORAL}/:id/attrs/:attrId`,
    {
      schema: {
        tags,
        summary: "Delete an attribute's instances from a temporal entity",
        querystring: queryOf('datasetId', 'deleteAll'),
      },
    },
    async (request, reply) => {
      const { id, attrId } = request.params as { id: string; attrId: string };
      const query = request.query as Record<string, unknown>;
      await live.temporalEntities.deleteAttribute(
        tenantOf(request),
        principalOf(request),
        id,
        attrId,
        {
          ...(query.datasetId !== undefined ? { datasetId: String(query.datasetId) } : {}),
          deleteAll: query.deleteAll === 'true',
        },
        linkContext(request),
      );
      reply.status(204).send();
    },
  );

  app.delete(
    `${TEMPORAL}/:id/attrs/:attrId/:instanceId`,
    { schema: { tags, summary: 'Delete an attribute instance from a temporal entity' } },
    async (request, reply) => {
      const { id, attrId, instanceId } = request.params as { id: string; attrId: string; instanceId: string };
      await live.temporalEntities.deleteInstance(
        tenantOf(request),
        principalOf(request),
        id,
        attrId,
        instanceId,
        linkContext(request),
      );
      reply.status(204).send();
    },
  );

  // Retention of history per entity type (platform extension): an organisation's administrators set how
  // long the history of their organisation's entities is kept, per tenant; its users read the rules.
  app.get(
    '/ngsi-ld/v1/temporal/retention',
    { schema: { tags, summary: "The caller's organisation's history retention per entity type" } },
    async (request) => {
      return live.temporal.listRetention(principalOf(request), tenantOf(request));
    },
  );

  app.put(
    '/ngsi-ld/v1/temporal/retention/:entityType',
    {
      schema: {
        tags,
        summary: "Set how long the history of the caller's organisation's entities of a type is kept",
        body: PAYLOADS.retention,
        consumes: CONSUMES,
      },
    },
    async (request, reply) => {
      const principal = principalOf(request);
      const { entityType } = request.params as { entityType: string };
      const { body, context } = splitPayload(request, request.body);
      const seconds = (body as { seconds?: unknown } | null)?.seconds;
      if (typeof seconds !== 'number') {
        throw new AppError('CONTEXT_LIVE_TEMPORAL_QUERY_INVALID', 'the body must be {"seconds": <number>}');
      }
      await live.temporal.setRetention(principal, tenantOf(request), entityType, seconds, context);
      reply.status(204).send();
    },
  );

  app.delete(
    '/ngsi-ld/v1/temporal/retention/:entityType',
    {
      schema: {
        tags,
        summary: "Clear the history retention of the caller's organisation for an entity type",
      },
    },
    async (request, reply) => {
      const { entityType } = request.params as { entityType: string };
      await live.temporal.setRetention(
        principalOf(request),
        tenantOf(request),
        entityType,
        null,
        linkContext(request),
      );
      reply.status(204).send();
    },
  );

  // --------------------------------------------------------------------------------------- ingestion
  const ingest = async (request: FastifyRequest, topic: string) => {
    if (!live.ingestion) throw new AppError('CONTEXT_LIVE_UNSUPPORTED', 'IoT ingestion is not configured');
    const p = request.principal;
    if (!p) throw new AppError('AUTH_TOKEN_MISSING', 'ingestion needs a service account token');
    const principal: IngestPrincipal = {
      userId: p.userId,
      orgId: p.orgId,
      roles: [...p.roles],
      defaultMarking: p.defaultMarking,
    };
    const payload = typeof request.body === 'string' ? request.body : JSON.stringify(request.body ?? '');
    const outcome = await live.ingestion.ingest({ source: 'http', topic, payload, principal });
    if (outcome.status === 'rejected') {
      throw new AppError(outcome.code ?? 'CONTEXT_LIVE_INGEST_INVALID', outcome.reason);
    }
    return { accepted: outcome.fragments };
  };

  app.post(
    '/ingest/v1/:tenant/measurements/:entityType/:deviceId',
    {
      bodyLimit,
      schema: {
        tags: ['IoT ingestion'],
        summary: 'Publish plain measurements of a device',
        body: PAYLOADS.measurements,
      },
    },
    async (request) => {
      const p = request.params as { tenant: string; entityType: string; deviceId: string };
      return ingest(request, `safecity/v1/${p.tenant}/measurements/${p.entityType}/${p.deviceId}`);
    },
  );

  app.post(
    '/ingest/v1/:tenant/entities',
    {
      bodyLimit,
      schema: {
        tags: ['IoT ingestion'],
        summary: 'Publish NGSI-LD entity fragments',
        body: PAYLOADS.ingestEntities,
      },
    },
    async (request) => {
      const p = request.params as { tenant: string };
      return ingest(request, `safecity/v1/${p.tenant}/entities`);
    },
  );

  app.get(
    '/ingest/v1/dead-letters',
    {
      schema: {
        tags: ['IoT ingestion'],
        summary: "List the organisation's refused messages",
        querystring: queryOf('limit', 'before'),
      },
    },
    async (request) => {
      const p = principalOf(request);
      const query = request.query as Record<string, unknown>;
      const { limit } = pageOf(query);
      return live.deadLetters.list({
        orgId: p.orgId,
        limit,
        ...(query.before !== undefined ? { before: String(query.before) } : {}),
      });
    },
  );
}

const CORE = 'https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld';

function linkContext(request: FastifyRequest): string | undefined {
  return contextFromLink(request.headers.link);
}

/** Whether `options` (a comma-separated list) names `option`. */
function hasOption(options: unknown, option: string): boolean {
  return typeof options === 'string' && options.split(',').some((o) => o.trim() === option);
}
