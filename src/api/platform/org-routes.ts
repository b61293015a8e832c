import type { FastifyInstance } from 'fastify';
import { actorOf, type Marking, type OrgKind } from '../../modules/access/index.ts';
import type { PlatformApiOptions } from './platform-deps.ts';
import { principalOf } from './principal-of.ts';
import { communityOut, id, idParams, itemsOf, marking, name, orgKind, orgOut, slug } from './schemas.ts';

const clients = {
  type: 'array',
  maxItems: 1000,
  uniqueItems: true,
  items: slug,
  examples: [['police']],
} as const;

export function orgRoutes(app: FastifyInstance, { access }: PlatformApiOptions): void {
  const tags = ['platform: organisations'];
  app.get(
    '/api/orgs',
    {
      schema: {
        tags,
        response: { 200: itemsOf(orgOut) },
        summary: 'Every organisation (any account: to choose audiences)',
      },
    },
    async () => ({
      items: await access.orgs.listOrgs(),
    }),
  );

  app.post<{
    Body: { id: string; name: string; kind: OrgKind; defaultMarking?: Marking; clients?: string[] };
  }>(
    '/api/orgs',
    {
      schema: {
        tags,
        response: { 201: orgOut },
        summary: 'Create an organisation (admin)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'name', 'kind'],
          properties: { id: slug, name, kind: orgKind, defaultMarking: marking, clients },
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      reply.status(201);
      return access.orgs.createOrg(actorOf(p), request.body);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/orgs/:id',
    { schema: { tags, response: { 200: orgOut }, summary: 'One organisation', params: idParams } },
    async (request) => {
      principalOf(request);
      return access.orgs.getOrg(request.params.id);
    },
  );

  app.patch<{
    Params: { id: string };
    Body: { name?: string; kind?: OrgKind; defaultMarking?: Marking; clients?: string[] };
  }>(
    '/api/orgs/:id',
    {
      schema: {
        tags,
        response: { 200: orgOut },
        summary: 'Change an organisation: name, kind, default marking, declared clients (admin)',
        params: idParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { name, kind: orgKind, defaultMarking: marking, clients },
        },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return access.orgs.updateOrg(actorOf(p), request.params.id, request.body);
    },
  );

  const ctags = ['platform: communities'];
  app.get(
    '/api/communities',
    {
      schema: {
        tags: ctags,
        response: { 200: itemsOf(communityOut) },
        summary: 'Every community, with the built-in "all"',
      },
    },
    async () => ({
      items: await access.orgs.listCommunities(),
    }),
  );

  app.post<{ Body: { id: string; name: string; description?: string; members?: string[] } }>(
    '/api/communities',
    {
      schema: {
        tags: ctags,
        response: { 201: communityOut },
        summary: 'Create a community of organisations (admin)',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['id', 'name'],
          properties: {
            id: slug,
            name,
            description: { type: 'string', maxLength: 2000 },
            members: clients,
          },
        },
      },
    },
    async (request, reply) => {
      const p = principalOf(request);
      reply.status(201);
      return access.orgs.createCommunity(actorOf(p), request.body);
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/communities/:id',
    {
      schema: {
        tags: ctags,
        response: { 200: communityOut },
        summary: 'One community and its members',
        params: idParams,
      },
    },
    async (request) => access.orgs.getCommunity(request.params.id),
  );

  const memberParams = {
    type: 'object',
    additionalProperties: false,
    required: ['id', 'orgId'],
    properties: { id, orgId: id },
  } as const;
  app.put<{ Params: { id: string; orgId: string } }>(
    '/api/communities/:id/members/:orgId',
    {
      schema: {
        tags: ctags,
        response: { 200: communityOut },
        summary: 'Add an organisation to a community (admin)',
        params: memberParams,
      },
    },
    async (request) => {
      const p = principalOf(request);
      return access.orgs.setCommunityMember(actorOf(p), request.params.id, request.params.orgId, true);
    },
  );
  app.delete<{ Params: { id: string; orgId: string } }>(
    '/api/communities/:id/members/:orgId',
    {
      schema: {
        tags: ctags,
        response: { 200: communityOut },
        summary: 'Remove an organisation from a community (admin)',
        params: memberParams,
      },
    },
    async (request) => {
      const p = principalOf(request);
      return access.orgs.setCommunityMember(actorOf(p), request.params.id, request.params.orgId, false);
    },
  );
}
