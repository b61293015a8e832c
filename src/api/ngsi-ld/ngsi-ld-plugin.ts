/**
 * The NGSI-LD API (ETSI GS CIM 009 v1.8) for entities: an encapsulated Fastify plugin, registered under
 * the prefix /ngsi-ld/v1. It owns its payload parsers (application/json, application/ld+json,
 * application/merge-patch+json) and its error handler (NGSI-LD ProblemDetails). It reads
 * `request.principal`, set by the app's authentication hook.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import type {
  ActiveContext,
  BatchItem,
  BatchResult,
  ContextService,
  EntityQuery,
  EntityView,
  GeoQueryInput,
  JoinedAnswer,
  JoinedNode,
  JoinRequest,
  Projection,
  UpdateResult,
} from '../../modules/context/index.ts';
import {
  LOCATION_IRI,
  projectedMembers,
  projectsNothing,
  renderEntity,
  renderFeature,
} from '../../modules/context/index.ts';
import { MARKING_HEADER, markingLabel } from '../../modules/sharing/index.ts';
import { jsonBodyParser } from '../http/json-body.ts';
import type {} from '../http/principal.ts';
import { parseQueryString } from '../http/query-string.ts';
import { routeMissError } from '../http/route-table.ts';
import { edgeValidatorCompiler } from '../http/validation.ts';
import { joinOf, placeInline, projectionOf, requiredAttributes } from './linked-answer.ts';
import { ngsiLdErrorHandler, toProblemDetails } from './ngsi-ld-errors.ts';
import {
  answerHeaders,
  callerOf,
  contextFromLink,
  echoTenant,
  intParam,
  list,
  mediaTypeOf,
  negotiate,
  type OutputOptions,
  outputOptions,
  paginationLinks,
  type ResponseType,
  readContext,
  refuseUnknownParameters,
  requireUriParam,
  requireWriter,
  splitBatchItem,
  splitPayload,
} from './ngsi-ld-request.ts';
import { CONSUMES, queryOf as documentedQuery, PAYLOADS } from './openapi.ts';

export interface NgsiLdPluginOptions {
  service: ContextService;
  /** Largest payload of single-entity operations, in bytes (default 1 MiB). */
  bodyLimit?: number;
  /** Largest payload of batch operations, in bytes (default 32 MiB). */
  batchBodyLimit?: number;
}

type Query = Record<string, string | undefined>;
type Params = { entityId: string; attrId: string; type: string };

const PAYLOAD_TYPES = ['application/json', 'application/ld+json', 'application/merge-patch+json'];

export async function ngsiLdPlugin(app: FastifyInstance, opts: NgsiLdPluginOptions): Promise<void> {
  const svc = opts.service;
  const bodyLimit = opts.bodyLimit ?? 1024 * 1024;
  const batchBodyLimit = opts.batchBodyLimit ?? 32 * 1024 * 1024;
  const prefix = app.prefix;

  app.removeAllContentTypeParsers();
  app.addContentTypeParser(
    PAYLOAD_TYPES,
    { parseAs: 'buffer' },
    jsonBodyParser({ malformed: (m) => new AppError('CONTEXT_INVALID_JSON', m) }),
  );
  app.setValidatorCompiler(edgeValidatorCompiler({ documentedBodies: true }));
  app.setErrorHandler(ngsiLdErrorHandler);
  app.setNotFoundHandler((request, reply) => {
    ngsiLdErrorHandler(routeMissError(request, 'NGSI-LD operation'), request, reply);
  });
  app.addHook('onRequest', async (request) => {
    requireUriParam((request.params as Partial<Params> | undefined)?.entityId, 'entity');
  });
  app.addHook('preValidation', async (request) => refuseUnknownParameters(request));

  const tags = ['NGSI-LD'];
  /** Route options: the OpenAPI summary, query parameters and payload (see openapi.ts). */
  const op = (
    summary: string,
    parts: { query?: ReturnType<typeof documentedQuery>; body?: object; batch?: boolean } = {},
  ) => ({
    bodyLimit: parts.batch ? batchBodyLimit : bodyLimit,
    schema: {
      tags,
      summary,
      ...(parts.query ? { querystring: parts.query } : {}),
      ...(parts.body ? { body: parts.body, consumes: CONSUMES } : {}),
    },
  });
  const view = [
    'attrs',
    'pick',
    'omit',
    'options',
    'format',
    'lang',
    'geometryProperty',
    'datasetId',
    'join',
    'joinLevel',
    'containedBy',
  ] as const;

  async function payload(request: FastifyRequest): Promise<{ body: unknown; ctx: ActiveContext }> {
    if (request.body === undefined)
      throw new AppError('CONTEXT_INVALID_JSON', 'the request needs a JSON payload');
    // A payload of the wrong JSON type is an invalid request (InvalidRequest), not bad data.
    if (request.body === null || typeof request.body !== 'object' || Array.isArray(request.body))
      throw new AppError('CONTEXT_INVALID_JSON', 'the payload must be a JSON object');
    const { body, context } = splitPayload(request, request.body);
    return { body, ctx: await svc.resolveContext(context) };
  }

  /**
   * One entity as the request asks for it: representation, projection (`projection`, else the request's),
   * system attributes, language, datasetIds; a GeoJSON Feature for application/geo+json. `@context` is the
   * caller's to add (top-level entities of ld+json answers only).
   */
  function render(
    view: EntityView,
    ctx: ActiveContext,
    out: OutputOptions,
    query: Query,
    type: ResponseType,
    projection: Projection = projectionOf(query, ctx),
  ): Record<string, unknown> {
    const members = projectedMembers(projection);
    const renderOpts = {
      format: out.format,
      sysAttrs: out.sysAttrs,
      attrs: members.attrs,
      omit: members.omit,
      core: members.core,
      lang: query.lang,
      datasetIds: datasetIdsOf(query),
      marking: view.marking,
      withMarking: out.marking,
    };
    if (type === 'application/geo+json') {
      const gp = query.geometryProperty ? ctx.expandTerm(query.geometryProperty) : LOCATION_IRI;
      return renderFeature(view.entity, ctx, { ...renderOpts, geometryProperty: gp });
    }
    return renderEntity(view.entity, ctx, renderOpts);
  }

  /** A top-level entity of an answer: `@context` in the body for application/ld+json. */
  function topLevel(body: Record<string, unknown>, ctx: ActiveContext, type: ResponseType) {
    if (type === 'application/ld+json') body['@context'] = ctx.echo;
    return body;
  }

  /**
   * A GeoJSON answer (clause 4.5.16, 6.3.15): one Feature, or a FeatureCollection of several, with the
   * @context the answer is compacted with as its `@context` member (ETSI 018_05, 019_05: a Feature or
   * FeatureCollection is no JSON-LD document the Link header would apply to); the Link header stays.
   */
  function geoAnswer(features: Record<string, unknown>[], ctx: ActiveContext, single: boolean) {
    if (single && features.length === 1) return { ...features[0], '@context': ctx.echo };
    return { type: 'FeatureCollection', features, '@context': ctx.echo };
  }

  /** An entity of a joined answer, with its linked entities inline (join=inline) or without (flat). */
  function renderNode(
    node: JoinedNode,
    ctx: ActiveContext,
    out: OutputOptions,
    query: Query,
    type: ResponseType,
    inline: boolean,
  ): Record<string, unknown> {
    const body = render(node.view, ctx, out, query, type, node.projection);
    if (inline) {
      const target = (type === 'application/geo+json' ? body.properties : body) as Record<string, unknown>;
      placeInline(target, node, ctx, out.format, (child) => {
        const b = renderNode(child, ctx, out, query, type, true);
        return type === 'application/geo+json' ? { id: b.id, ...(b.properties as object) } : b;
      });
    }
    return body;
  }

  /**
   * Linked entity retrieval for an answer's entities (clause 4.5.23), within the caller's visibility; the
   * answer's SafeCity-Marking covers the entities joined too.
   */
  async function joined(
    request: FastifyRequest,
    reply: FastifyReply,
    roots: EntityView[],
    join: JoinRequest | undefined,
    projection: Projection,
  ): Promise<JoinedAnswer | undefined> {
    const answer = join ? await svc.joinLinked(callerOf(request), roots, join, projection) : undefined;
    markingHeader(reply, [...roots, ...(answer?.linked.map((n) => n.view) ?? [])]);
    return answer;
  }

  /** The entities of an answer, rendered: with their linked entities inline, or followed by them (flat). */
  function renderAnswer(
    roots: EntityView[],
    answer: JoinedAnswer | undefined,
    join: JoinRequest | undefined,
    ctx: ActiveContext,
    out: OutputOptions,
    query: Query,
    type: ResponseType,
    projection: Projection,
  ): Record<string, unknown>[] {
    if (!answer || !join)
      return roots.map((v) => topLevel(render(v, ctx, out, query, type, projection), ctx, type));
    const nodes = join.join === 'inline' ? answer.roots : [...answer.roots, ...answer.linked];
    return nodes.map((n) =>
      topLevel(renderNode(n, ctx, out, query, type, join.join === 'inline'), ctx, type),
    );
  }

  function updateAnswer(reply: FastifyReply, ctx: ActiveContext, r: UpdateResult) {
    if (r.notUpdated.length === 0) return reply.status(204).send();
    return reply
      .status(207)
      .type('application/json')
      .send({
        updated: r.updated.map((n) => (n === 'marking' ? n : ctx.compactIri(n))),
        notUpdated: r.notUpdated.map((n) => ({
          attributeName: ctx.compactIri(n.attributeName),
          reason: n.reason,
        })),
      });
  }

  // ------------------------------------------------------------------------------------ entities

  app.post('/entities', op('Create an entity', { body: PAYLOADS.entity }), async (request, reply) => {
    requireWriter(request);
    const { body, ctx } = await payload(request);
    const view = await svc.createEntity(callerOf(request), body, ctx);
    reply.header('Location', `${prefix}/entities/${encodeURIComponent(view.entity.id)}`);
    tenantEcho(request, reply);
    return reply.status(201).send();
  });

  app.get(
    '/entities',
    op('Query entities', {
      query: documentedQuery(
        'type',
        'id',
        'idPattern',
        'q',
        'scopeQ',
        'georel',
        'geometry',
        'coordinates',
        'geoproperty',
        'limit',
        'offset',
        'count',
        'local',
        'csf',
        'expandValues',
        ...view,
      ),
    }),
    async (request, reply) => {
      const query = queryOf(request);
      const type = negotiate(request);
      const out = outputOptions(query);
      const ctx = await readContext(svc, request);
      const projection = projectionOf(query, ctx);
      const join = joinOf(query);
      const q = entityQuery(query);
      const result = await svc.queryEntities(callerOf(request), q, ctx);
      answerHeaders(reply, request, type, ctx);
      paginationLinks(request, reply, `${prefix}/entities`, {
        limit: q.limit ?? svc.defaultLimit,
        offset: q.offset ?? 0,
        more: result.more,
      });
      const roots = shown(result.items, projection);
      const answer = await joined(request, reply, roots, join, projection);
      if (result.count !== undefined) reply.header('NGSILD-Results-Count', String(result.count));
      const items = renderAnswer(roots, answer, join, ctx, out, query, type, projection);
      return type === 'application/geo+json' ? geoAnswer(items, ctx, false) : items;
    },
  );

  app.delete(
    '/entities',
    op('Purge entities (delete those a query selects)', {
      query: documentedQuery(
        'type',
        'id',
        'idPattern',
        'q',
        'scopeQ',
        'georel',
        'geometry',
        'coordinates',
        'geoproperty',
        'local',
        'csf',
        // Refused with 422 below, never ignored.
        'attrs',
        'pick',
        'omit',
        'datasetId',
      ),
    }),
    async (request, reply) => {
      requireWriter(request);
      const query = queryOf(request);
      for (const p of ['attrs', 'pick', 'omit', 'datasetId'] as const) {
        // Never ignored: a purge that dropped a selector would delete more than asked.
        if (query[p] !== undefined) {
          throw new AppError(
            'CONTEXT_OPERATION_NOT_SUPPORTED',
            `a purge deletes whole entities; ${p} is not supported (delete attributes one entity at a time)`,
          );
        }
      }
      const ctx = await readContext(svc, request);
      const r = await svc.purgeEntities(callerOf(request), entityQuery(query), ctx);
      tenantEcho(request, reply);
      return batchAnswer(reply, r, 204);
    },
  );

  app.get(
    '/entities/:entityId',
    op('Retrieve an entity', { query: documentedQuery(...view, 'local') }),
    async (request, reply) => {
      const { entityId } = request.params as Params;
      const query = queryOf(request);
      const type = negotiate(request);
      const out = outputOptions(query);
      const ctx = await readContext(svc, request);
      const projection = projectionOf(query, ctx);
      const join = joinOf(query);
      const view = await svc.getEntity(callerOf(request), entityId);
      if (projectsNothing(view.entity, projection)) {
        // Nothing of the entity is left to show (ETSI tests 018_19).
        throw new AppError(
          'CONTEXT_ENTITY_NOT_FOUND',
          `entity ${entityId} has none of the members pick and omit leave to show`,
        );
      }
      answerHeaders(reply, request, type, ctx);
      const answer = await joined(request, reply, [view], join, projection);
      const items = renderAnswer([view], answer, join, ctx, out, query, type, projection);
      // Flat: the entity followed by the entities joined; the entity alone when none was.
      if (type === 'application/geo+json') return geoAnswer(items, ctx, true);
      if (items.length === 1) return items[0];
      return items;
    },
  );

  app.delete('/entities/:entityId', op('Delete an entity'), async (request, reply) => {
    requireWriter(request);
    const { entityId } = request.params as Params;
    await svc.deleteEntity(callerOf(request), entityId);
    tenantEcho(request, reply);
    return reply.status(204).send();
  });

  app.put(
    '/entities/:entityId',
    op('Replace an entity', { body: PAYLOADS.entity }),
    async (request, reply) => {
      requireWriter(request);
      const { entityId } = request.params as Params;
      const { body, ctx } = await payload(request);
      await svc.replaceEntity(callerOf(request), entityId, body, ctx);
      tenantEcho(request, reply);
      return reply.status(204).send();
    },
  );

  app.patch(
    '/entities/:entityId',
    op('Merge into an entity', { body: PAYLOADS.fragment }),
    async (request, reply) => {
      requireWriter(request);
      const { entityId } = request.params as Params;
      const { body, ctx } = await payload(request);
      const r = await svc.mergeEntity(callerOf(request), entityId, body, ctx);
      tenantEcho(request, reply);
      return updateAnswer(reply, ctx, r);
    },
  );

  app.post(
    '/entities/:entityId/attrs',
    op('Append attributes', { body: PAYLOADS.fragment, query: documentedQuery('options') }),
    async (request, reply) => {
      requireWriter(request);
      const { entityId } = request.params as Params;
      const out = outputOptions(queryOf(request));
      const { body, ctx } = await payload(request);
      const r = await svc.appendAttributes(callerOf(request), entityId, body, ctx, {
        noOverwrite: out.noOverwrite,
      });
      tenantEcho(request, reply);
      return updateAnswer(reply, ctx, r);
    },
  );

  app.patch(
    '/entities/:entityId/attrs',
    op('Update attributes', { body: PAYLOADS.fragment }),
    async (request, reply) => {
      requireWriter(request);
      const { entityId } = request.params as Params;
      const { body, ctx } = await payload(request);
      const r = await svc.updateAttributes(callerOf(request), entityId, body, ctx);
      tenantEcho(request, reply);
      return updateAnswer(reply, ctx, r);
    },
  );

  app.patch(
    '/entities/:entityId/attrs/:attrId',
    op('Partially update an attribute', { body: PAYLOADS.attribute }),
    async (request, reply) => {
      requireWriter(request);
      const { entityId, attrId } = request.params as Params;
      const { body, ctx } = await payload(request);
      await svc.partialUpdateAttribute(callerOf(request), entityId, attrId, body, ctx);
      tenantEcho(request, reply);
      return reply.status(204).send();
    },
  );

  app.put(
    '/entities/:entityId/attrs/:attrId',
    op('Replace an attribute', { body: PAYLOADS.attribute }),
    async (request, reply) => {
      requireWriter(request);
      const { entityId, attrId } = request.params as Params;
      const { body, ctx } = await payload(request);
      const r = await svc.updateAttributes(callerOf(request), entityId, { [attrId]: body }, ctx);
      if (r.updated.length === 0) {
        throw new AppError('CONTEXT_ATTRIBUTE_NOT_FOUND', `entity ${entityId} has no attribute ${attrId}`);
      }
      tenantEcho(request, reply);
      return reply.status(204).send();
    },
  );

  app.delete(
    '/entities/:entityId/attrs/:attrId',
    op('Delete an attribute', { query: documentedQuery('datasetId', 'deleteAll') }),
    async (request, reply) => {
      requireWriter(request);
      const { entityId, attrId } = request.params as Params;
      const query = queryOf(request);
      const ctx = await readContext(svc, request);
      await svc.deleteAttribute(callerOf(request), entityId, attrId, ctx, {
        datasetId: query.datasetId,
        deleteAll: query.deleteAll === 'true',
      });
      tenantEcho(request, reply);
      return reply.status(204).send();
    },
  );

  // ------------------------------------------------------------------------------ batch operations

  /** Splits a batch payload into entities with their resolved @context; the ones that fail are errors. */
  async function batchItems(
    request: FastifyRequest,
  ): Promise<{ items: BatchItem[]; earlier: BatchResult['errors'] }> {
    const body = request.body;
    if (!Array.isArray(body)) throw new AppError('CONTEXT_INVALID_JSON', 'a batch payload is a JSON array');
    if (body.length === 0)
      throw new AppError('CONTEXT_INVALID_REQUEST', 'a batch payload holds at least one entity');
    if (body.length > svc.maxBatch) {
      throw new AppError(
        'CONTEXT_BATCH_TOO_LARGE',
        `a batch carries at most ${svc.maxBatch} entities (got ${body.length})`,
      );
    }
    const type = mediaTypeOf(request);
    const link = contextFromLink(request.headers.link);
    if (type === 'application/ld+json' && link !== undefined) {
      throw new AppError(
        'CONTEXT_INVALID_JSONLD',
        'application/ld+json payloads carry @context in the body, not in a Link header',
      );
    }
    const items: BatchItem[] = [];
    const earlier: BatchResult['errors'] = [];
    for (const raw of body) {
      try {
        const { body: b, context } = splitBatchItem(type, raw, link);
        items.push({ body: b, ctx: await svc.resolveContext(context) });
      } catch (e) {
        const id = raw && typeof raw === 'object' ? (raw as Record<string, unknown>).id : undefined;
        earlier.push({ entityId: typeof id === 'string' ? id : '', error: e as AppError });
      }
    }
    return { items, earlier };
  }

  function batchAnswer(reply: FastifyReply, r: BatchResult, okStatus: 201 | 204, okBody?: unknown) {
    if (r.errors.length === 0) {
      return okBody === undefined
        ? reply.status(okStatus).send()
        : reply.status(okStatus).type('application/json').send(okBody);
    }
    return reply
      .status(207)
      .type('application/json')
      .send({
        success: r.success,
        errors: r.errors.map((e) => ({ entityId: e.entityId, error: toProblemDetails(e.error) })),
      });
  }

  app.post(
    '/entityOperations/create',
    op('Create entities (batch)', { body: PAYLOADS.entities, batch: true }),
    async (request, reply) => {
      requireWriter(request);
      const { items, earlier } = await batchItems(request);
      const r = await svc.batchCreate(callerOf(request), items);
      r.errors.unshift(...earlier);
      tenantEcho(request, reply);
      return batchAnswer(reply, r, 201, r.success);
    },
  );

  app.post(
    '/entityOperations/upsert',
    op('Create or replace entities (batch)', {
      body: PAYLOADS.entities,
      batch: true,
      query: documentedQuery('options'),
    }),
    async (request, reply) => {
      requireWriter(request);
      const out = outputOptions(queryOf(request));
      const { items, earlier } = await batchItems(request);
      const r = await svc.batchUpsert(callerOf(request), items, out.upsertMode);
      r.errors.unshift(...earlier);
      tenantEcho(request, reply);
      const createdIds = r.created ?? [];
      if (r.errors.length === 0 && createdIds.length === 0) return reply.status(204).send();
      return batchAnswer(reply, r, 201, createdIds);
    },
  );

  app.post(
    '/entityOperations/update',
    op('Update entities (batch)', {
      body: PAYLOADS.entities,
      batch: true,
      query: documentedQuery('options'),
    }),
    async (request, reply) => {
      requireWriter(request);
      const out = outputOptions(queryOf(request));
      const { items, earlier } = await batchItems(request);
      const r = await svc.batchUpdate(callerOf(request), items, { noOverwrite: out.noOverwrite });
      r.errors.unshift(...earlier);
      tenantEcho(request, reply);
      return batchAnswer(reply, r, 204);
    },
  );

  app.post(
    '/entityOperations/merge',
    op('Merge into entities (batch)', { body: PAYLOADS.entities, batch: true }),
    async (request, reply) => {
      requireWriter(request);
      const { items, earlier } = await batchItems(request);
      const r = await svc.batchMerge(callerOf(request), items);
      r.errors.unshift(...earlier);
      tenantEcho(request, reply);
      return batchAnswer(reply, r, 204);
    },
  );

  app.post(
    '/entityOperations/delete',
    op('Delete entities (batch)', { body: PAYLOADS.entityIds, batch: true }),
    async (request, reply) => {
      requireWriter(request);
      const body = request.body;
      if (!Array.isArray(body))
        throw new AppError('CONTEXT_INVALID_JSON', 'a batch delete payload is a JSON array of ids');
      if (body.length === 0)
        throw new AppError('CONTEXT_INVALID_REQUEST', 'a batch delete payload holds at least one id');
      const r = await svc.batchDelete(callerOf(request), body);
      tenantEcho(request, reply);
      return batchAnswer(reply, r, 204);
    },
  );

  /** POST /entityOperations/query: a Query object in the body (clause 5.7.2 by POST). */
  app.post(
    '/entityOperations/query',
    op('Query entities with a Query payload', {
      body: PAYLOADS.query,
      query: documentedQuery(
        'limit',
        'offset',
        'count',
        'options',
        'format',
        'pick',
        'omit',
        'lang',
        'datasetId',
        'geometryProperty',
        'local',
      ),
    }),
    async (request, reply) => {
      const type = negotiate(request);
      const query = queryOf(request);
      const out = outputOptions(query);
      const { body, ctx } = await payload(request);
      const b = (body ?? {}) as Record<string, unknown>;
      if (b.type !== 'Query')
        throw new AppError('CONTEXT_INVALID_REQUEST', 'the payload must be a Query (type "Query")');
      const isObject = (e: unknown) => e !== null && typeof e === 'object' && !Array.isArray(e);
      if (b.entities !== undefined && !(Array.isArray(b.entities) && b.entities.every(isObject)))
        throw new AppError(
          'CONTEXT_INVALID_REQUEST',
          'entities must be a list of {type, id, idPattern} objects',
        );
      if (b.attrs !== undefined && !(Array.isArray(b.attrs) && b.attrs.every((a) => typeof a === 'string')))
        throw new AppError('CONTEXT_INVALID_REQUEST', 'attrs must be a list of attribute names');
      const entities = (b.entities ?? []) as Record<string, unknown>[];
      const q: EntityQuery = {
        type:
          entities
            .map((e) => e.type)
            .filter((t): t is string => typeof t === 'string')
            .join(',') || undefined,
        ids: entities.map((e) => e.id).filter((t): t is string => typeof t === 'string'),
        idPattern: entities.map((e) => e.idPattern).find((t): t is string => typeof t === 'string'),
        attrs: Array.isArray(b.attrs) ? (b.attrs as string[]) : undefined,
        q: typeof b.q === 'string' ? b.q : undefined,
        expandValues: expandValuesOf(b.expandValues),
        scopeQ: typeof b.scopeQ === 'string' ? b.scopeQ : undefined,
        geo: b.geoQ && typeof b.geoQ === 'object' ? (b.geoQ as GeoQueryInput) : undefined,
        limit: intParam(query.limit, 'limit'),
        offset: intParam(query.offset, 'offset'),
        count: query.count === 'true',
      };
      if (q.ids?.length === 0) q.ids = undefined;
      const linkQuery = { ...query, ...joinMembers(b), attrs: q.attrs?.join(',') };
      const projection = projectionOf(linkQuery, ctx);
      const join = joinOf(linkQuery);
      const result = await svc.queryEntities(callerOf(request), q, ctx);
      answerHeaders(reply, request, type, ctx);
      const roots = shown(result.items, projection);
      const answer = await joined(request, reply, roots, join, projection);
      if (result.count !== undefined) reply.header('NGSILD-Results-Count', String(result.count));
      const items = renderAnswer(roots, answer, join, ctx, out, linkQuery, type, projection);
      return type === 'application/geo+json' ? geoAnswer(items, ctx, false) : items;
    },
  );

  // ----------------------------------------------------------------------- @context API (5.13)

  const contextUrl = (request: FastifyRequest, id: string) =>
    `${request.protocol}://${request.host}${prefix}/jsonldContexts/${encodeURIComponent(id)}`;

  app.post('/jsonldContexts', op('Host a @context', { body: PAYLOADS.context }), async (request, reply) => {
    requireWriter(request);
    if (request.body === undefined)
      throw new AppError('CONTEXT_INVALID_JSON', 'the request needs a JSON payload');
    const id = await svc.addHostedContext(callerOf(request), request.body);
    reply.header('Location', `${prefix}/jsonldContexts/${encodeURIComponent(id)}`);
    return reply.status(201).send();
  });

  app.get(
    '/jsonldContexts',
    op('List @contexts', { query: documentedQuery('kind', 'details') }),
    async (request, reply) => {
      negotiate(request, false);
      const query = queryOf(request);
      if (query.kind !== undefined && !['Hosted', 'Cached', 'ImplicitlyCreated'].includes(query.kind)) {
        throw new AppError('CONTEXT_INVALID_REQUEST', `kind must be Hosted, Cached or ImplicitlyCreated`);
      }
      const { hosted, cached } = await svc.listContexts();
      const infos = [
        ...hosted.map((h) => hostedInfo(request, h)),
        ...cached.map((c) => cachedInfo(c)),
      ].filter((i) => query.kind === undefined || i.kind === query.kind);
      reply.type('application/json');
      return query.details === 'true' ? infos : infos.map((i) => i.URL);
    },
  );

  /** ContextInfo (clause 5.2.38) of a context held in the broker's table (Hosted, ImplicitlyCreated). */
  function hostedInfo(
    request: FastifyRequest,
    h: { id: string; kind: string; createdAt: string; numberOfHits: number; lastUsage?: string },
  ): Record<string, unknown> {
    return {
      URL: contextUrl(request, h.id),
      localId: h.id,
      kind: h.kind,
      createdAt: h.createdAt,
      ...(h.lastUsage ? { lastUsage: h.lastUsage } : {}),
      numberOfHits: h.numberOfHits,
    };
  }

  /** ContextInfo of a cached remote context: its URL is its id. */
  function cachedInfo(c: {
    url: string;
    createdAt: string;
    numberOfHits: number;
    lastUsage?: string;
  }): Record<string, unknown> {
    return {
      URL: c.url,
      localId: c.url,
      kind: 'Cached',
      createdAt: c.createdAt,
      ...(c.lastUsage ? { lastUsage: c.lastUsage } : {}),
      numberOfHits: c.numberOfHits,
    };
  }

  // Served to anyone: JSON-LD processors dereference contexts without credentials. A hosted context by its
  // id, a cached one (and the core context) by its URL; `details=true` answers its ContextInfo instead.
  app.get(
    '/jsonldContexts/:contextId',
    { ...op('Serve a @context', { query: documentedQuery('details') }), config: { public: true } },
    async (request, reply) => {
      const { contextId } = request.params as { contextId: string };
      const details = queryOf(request).details === 'true';
      const hosted = details ? await svc.hostedContextInfo(contextId) : undefined;
      if (hosted) {
        reply.type('application/json');
        return hostedInfo(request, hosted);
      }
      if (/^https?:\/\//i.test(contextId)) {
        const cached = await svc.cachedContext(contextId);
        if (cached) {
          if (details) {
            reply.type('application/json');
            return cachedInfo(cached);
          }
          reply.type('application/ld+json');
          return cached.document;
        }
      }
      const row = await svc.getHostedContext(contextId);
      reply.type('application/ld+json');
      return row.body;
    },
  );

  app.delete(
    '/jsonldContexts/:contextId',
    op('Delete a hosted @context, or drop or reload a cached one', { query: documentedQuery('reload') }),
    async (request, reply) => {
      requireWriter(request);
      const { contextId } = request.params as { contextId: string };
      const reload = queryOf(request).reload;
      if (reload !== undefined && reload !== 'true' && reload !== 'false') {
        throw new AppError('CONTEXT_INVALID_REQUEST', 'reload must be true or false');
      }
      if (/^https?:\/\//i.test(contextId)) {
        await svc.deleteCachedContext(callerOf(request), contextId, reload === 'true');
      } else {
        await svc.deleteHostedContext(callerOf(request), contextId, { reload: reload === 'true' });
      }
      return reply.status(204).send();
    },
  );

  // ------------------------------------------------------------------------------------- discovery

  app.get(
    '/types',
    op('Entity types', { query: documentedQuery('details', 'local') }),
    async (request, reply) => {
      const type = negotiate(request, false);
      const ctx = await readContext(svc, request);
      const types = await svc.listTypes(callerOf(request));
      answerHeaders(reply, request, type, ctx);
      const withCtx = (o: Record<string, unknown>) =>
        type === 'application/ld+json' ? { ...o, '@context': ctx.echo } : o;
      if (queryOf(request).details === 'true') {
        return types.map((t) =>
          withCtx({
            id: t.type,
            type: 'EntityType',
            typeName: ctx.compactIri(t.type),
            attributeNames: [...t.attributes.keys()].map((a) => ctx.compactIri(a)),
          }),
        );
      }
      return withCtx({
        id: `urn:ngsi-ld:EntityTypeList:${hashOf(types.map((t) => t.type).join(','))}`,
        type: 'EntityTypeList',
        typeList: types.map((t) => ctx.compactIri(t.type)),
      });
    },
  );

  app.get(
    '/types/:type',
    op('One entity type', { query: documentedQuery('local') }),
    async (request, reply) => {
      const type = negotiate(request, false);
      const ctx = await readContext(svc, request);
      const wanted = ctx.expandTerm((request.params as Params).type);
      const info = (await svc.listTypes(callerOf(request))).find((t) => t.type === wanted);
      if (!info)
        throw new AppError('CONTEXT_TYPE_NOT_FOUND', `no entity of type ${(request.params as Params).type}`);
      answerHeaders(reply, request, type, ctx);
      const body: Record<string, unknown> = {
        id: info.type,
        type: 'EntityTypeInfo',
        typeName: ctx.compactIri(info.type),
        entityCount: info.count,
        attributeDetails: [...info.attributes].map(([a, kinds]) => ({
          id: a,
          type: 'Attribute',
          attributeName: ctx.compactIri(a),
          attributeTypes: kinds,
        })),
      };
      if (type === 'application/ld+json') body['@context'] = ctx.echo;
      return body;
    },
  );

  app.get(
    '/attributes',
    op('Attributes', { query: documentedQuery('details', 'local') }),
    async (request, reply) => {
      const type = negotiate(request, false);
      const ctx = await readContext(svc, request);
      const attrs = await svc.listAttributes(callerOf(request));
      answerHeaders(reply, request, type, ctx);
      const withCtx = (o: Record<string, unknown>) =>
        type === 'application/ld+json' ? { ...o, '@context': ctx.echo } : o;
      if (queryOf(request).details === 'true') {
        return attrs.map((a) => withCtx(attributeBody(a, ctx)));
      }
      return withCtx({
        id: `urn:ngsi-ld:AttributeList:${hashOf(attrs.map((a) => a.attribute).join(','))}`,
        type: 'AttributeList',
        attributeList: attrs.map((a) => ctx.compactIri(a.attribute)),
      });
    },
  );

  app.get(
    '/attributes/:attrId',
    op('One attribute', { query: documentedQuery('local') }),
    async (request, reply) => {
      const type = negotiate(request, false);
      const ctx = await readContext(svc, request);
      const wanted = ctx.expandTerm((request.params as Params).attrId);
      const a = (await svc.listAttributes(callerOf(request))).find((x) => x.attribute === wanted);
      if (!a)
        throw new AppError(
          'CONTEXT_ATTRIBUTE_NOT_FOUND',
          `no entity has attribute ${(request.params as Params).attrId}`,
        );
      answerHeaders(reply, request, type, ctx);
      const body = attributeBody(a, ctx);
      if (type === 'application/ld+json') body['@context'] = ctx.echo;
      return body;
    },
  );
}

function attributeBody(
  a: { attribute: string; count: number; typeNames: string[]; attributeTypes: string[] },
  ctx: ActiveContext,
): Record<string, unknown> {
  return {
    id: a.attribute,
    type: 'Attribute',
    attributeName: ctx.compactIri(a.attribute),
    attributeCount: a.count,
    attributeTypes: a.attributeTypes,
    typeNames: a.typeNames.map((t) => ctx.compactIri(t)),
  };
}

/**
 * The entities of a page a projection leaves something of: a query leaves out those `pick` or `omit` empty
 * (ETSI tests 019_17: `pick=name` answers only the entities with a name).
 */
function shown(views: EntityView[], projection: Projection): EntityView[] {
  if (!projection.pick && !projection.omit) return views;
  return views.filter((v) => !projectsNothing(v.entity, projection));
}

/** `datasetId=a,b` (and `@none` for the default instance): the attribute instances an answer shows. */
function datasetIdsOf(query: Query): Set<string> | undefined {
  const ids = list(query.datasetId);
  return ids ? new Set(ids) : undefined;
}

/** `expandValues` of a Query payload: a comma-separated string, as the parameter, or a list of names. */
function expandValuesOf(v: unknown): string[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return list(v);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  throw new AppError(
    'CONTEXT_INVALID_QUERY',
    'expandValues must be a comma-separated string or a list of names',
  );
}

/** `join`, `joinLevel` and `containedBy` of a Query payload (POST /entityOperations/query), as parameters. */
function joinMembers(b: Record<string, unknown>): Query {
  const out: Query = {};
  if (b.join !== undefined) {
    if (typeof b.join !== 'string') throw new AppError('CONTEXT_INVALID_QUERY', 'join must be a string');
    out.join = b.join;
  }
  if (b.joinLevel !== undefined) {
    if (!Number.isInteger(b.joinLevel))
      throw new AppError('CONTEXT_INVALID_QUERY', 'joinLevel must be an integer');
    out.joinLevel = String(b.joinLevel);
  }
  if (b.containedBy !== undefined) {
    const c = b.containedBy;
    if (!Array.isArray(c) || !c.every((x) => typeof x === 'string'))
      throw new AppError('CONTEXT_INVALID_QUERY', 'containedBy must be a list of entity ids');
    out.containedBy = c.join(',');
  }
  return out;
}

function entityQuery(query: Query): EntityQuery {
  const geo: GeoQueryInput | undefined =
    query.georel !== undefined || query.geometry !== undefined || query.coordinates !== undefined
      ? {
          georel: query.georel,
          geometry: query.geometry,
          coordinates: query.coordinates,
          geoproperty: query.geoproperty,
        }
      : undefined;
  if (query.csf !== undefined) {
    throw new AppError(
      'CONTEXT_OPERATION_NOT_SUPPORTED',
      'context source filters (csf) are not supported: no registrations',
    );
  }
  return {
    type: query.type,
    ids: list(query.id),
    idPattern: query.idPattern,
    // pick's own names (not those in braces, which belong to linked entities).
    attrs: requiredAttributes(query),
    q: query.q,
    expandValues: list(query.expandValues),
    scopeQ: query.scopeQ,
    geo,
    limit: intParam(query.limit, 'limit'),
    offset: intParam(query.offset, 'offset'),
    count: query.count === 'true',
    local: query.local === 'true',
  };
}

/** The query parameters, read as every surface reads them (src/api/http/query-string.ts), as text. */
function queryOf(request: FastifyRequest): Query {
  const cached = (request as FastifyRequest & { ngsiQuery?: Query }).ngsiQuery;
  if (cached) return cached;
  const out: Query = Object.create(null);
  const i = request.url.indexOf('?');
  if (i >= 0) {
    for (const [key, value] of Object.entries(parseQueryString(request.url.slice(i + 1))))
      out[key] = Array.isArray(value) ? value.at(-1) : value;
  }
  (request as FastifyRequest & { ngsiQuery?: Query }).ngsiQuery = out;
  return out;
}

/**
 * The marking of what the answer holds, in the platform's one label form: one entity's own label, or for a
 * page the tightest label and PAP with every owner (none for an empty page). The payloads stay standard.
 */
function markingHeader(reply: FastifyReply, views: readonly EntityView[]): void {
  const label = markingLabel(views);
  if (label) reply.header(MARKING_HEADER, label);
}

function tenantEcho(request: FastifyRequest, reply: FastifyReply): void {
  echoTenant(request, reply);
}

function hashOf(s: string): string {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16);
}
