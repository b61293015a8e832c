import type { FastifyInstance } from 'fastify';
import type { RulePatch } from '../../modules/detection-live/index.ts';
import { principalOf } from '../platform/principal-of.ts';
import { id, limit, marking, slug } from '../platform/schemas.ts';
import type { DetectionApiOptions } from './detection-deps.ts';
import {
  dryRunOut,
  ruleDocument,
  ruleIdParams,
  ruleOut,
  versionOut,
  versionParams,
  window,
} from './schemas.ts';

const tags = ['detection: rules'];

export function ruleRoutes(app: FastifyInstance, { rules, dryRun }: DetectionApiOptions): void {
  app.get<{ Querystring: { limit?: number; before?: string; enabled?: boolean; owner?: string } }>(
    '/api/rules',
    {
      schema: {
        tags,
        summary: 'Rules the caller may see, newest first',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { limit, before: id, enabled: { type: 'boolean' }, owner: slug },
        },
        response: {
          200: {
            type: 'object',
            required: ['items', 'next'],
            properties: { items: { type: 'array', items: ruleOut }, next: { type: ['string', 'null'] } },
          },
        },
      },
    },
    async (request) => {
      const q = request.query;
      const items = await rules.list(principalOf(request), {
        limit: q.limit,
        before: q.before,
        enabled: q.enabled,
        ownerOrg: q.owner,
      });
      return { items, next: items.length > 0 && items.length === (q.limit ?? 100) ? items.at(-1)?.id : null };
    },
  );

  app.post<{ Body: { rule: unknown; marking?: unknown; enabled?: boolean } }>(
    '/api/rules',
    {
      schema: {
        tags,
        summary:
          'Create a rule (writers); version 1. Without a marking it gets the organisation’s default; invalid rules are 400 with every problem’s path',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['rule'],
          properties: { rule: ruleDocument, marking, enabled: { type: 'boolean' } },
        },
        response: { 201: ruleOut },
      },
    },
    async (request, reply) => {
      const rule = await rules.create(principalOf(request), request.body);
      reply.status(201).header('location', `/api/rules/${rule.id}`);
      return rule;
    },
  );

  app.post<{ Body: { rule: unknown; from: string; to: string } }>(
    '/api/rules/dry-run',
    {
      schema: {
        tags,
        summary:
          'Replay stored history through a draft rule (no id): what would have fired, when, with which evidence — nothing is raised. Reads only what the caller’s organisation may see',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['rule', 'from', 'to'],
          properties: { rule: ruleDocument, ...window },
        },
        response: { 200: dryRunOut },
      },
    },
    async (request) => {
      const p = principalOf(request);
      const b = request.body;
      return dryRun.draft(p, b.rule, { from: b.from, to: b.to });
    },
  );

  app.get<{ Params: { id: string } }>(
    '/api/rules/:id',
    {
      schema: {
        tags,
        summary: 'One rule (404 when it does not exist or the caller may not see it)',
        params: ruleIdParams,
        response: { 200: ruleOut },
      },
    },
    async (request) => rules.get(principalOf(request), request.params.id),
  );

  app.patch<{ Params: { id: string }; Body: RulePatch }>(
    '/api/rules/:id',
    {
      schema: {
        tags,
        summary:
          'Change a rule (writers of the owner organisation): a new document is a new version; marking and enabled as any object’s',
        params: ruleIdParams,
        body: {
          type: 'object',
          additionalProperties: false,
          minProperties: 1,
          properties: { rule: ruleDocument, marking, enabled: { type: 'boolean' } },
        },
        response: { 200: ruleOut },
      },
    },
    async (request) => rules.update(principalOf(request), request.params.id, request.body),
  );

  app.delete<{ Params: { id: string } }>(
    '/api/rules/:id',
    {
      schema: {
        tags,
        summary: 'Delete a rule and its versions (writers of the owner organisation); its alerts stay',
        params: ruleIdParams,
      },
    },
    async (request, reply) => {
      await rules.remove(principalOf(request), request.params.id);
      reply.status(204);
    },
  );

  for (const [action, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    app.post<{ Params: { id: string } }>(
      `/api/rules/:id/${action}`,
      {
        schema: {
          tags,
          summary: `${enabled ? 'Enable' : 'Disable'} a rule (writers of the owner organisation)${enabled ? '; lifts a suspension' : ''}`,
          params: ruleIdParams,
          response: { 200: ruleOut },
        },
      },
      async (request) => rules.setEnabled(principalOf(request), request.params.id, enabled),
    );
  }

  app.get<{ Params: { id: string } }>(
    '/api/rules/:id/versions',
    {
      schema: {
        tags,
        summary: 'Every version of a rule, newest first',
        params: ruleIdParams,
        response: {
          200: {
            type: 'object',
            required: ['items'],
            properties: { items: { type: 'array', items: versionOut } },
          },
        },
      },
    },
    async (request) => ({ items: await rules.versions(principalOf(request), request.params.id) }),
  );

  app.get<{ Params: { id: string; version: number } }>(
    '/api/rules/:id/versions/:version',
    {
      schema: {
        tags,
        summary: 'One version of a rule',
        params: versionParams,
        response: { 200: versionOut },
      },
    },
    async (request) => rules.version(principalOf(request), request.params.id, request.params.version),
  );

  app.post<{ Params: { id: string }; Body: { version: number } }>(
    '/api/rules/:id/restore',
    {
      schema: {
        tags,
        summary:
          'Restore an old version: a new version with its document (writers of the owner organisation)',
        params: ruleIdParams,
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['version'],
          properties: { version: { type: 'integer', minimum: 1, maximum: 1_000_000 } },
        },
        response: { 200: ruleOut },
      },
    },
    async (request) => rules.restore(principalOf(request), request.params.id, request.body.version),
  );

  app.post<{ Params: { id: string }; Body: { from: string; to: string } }>(
    '/api/rules/:id/dry-run',
    {
      schema: {
        tags,
        summary:
          'Replay stored history through a rule as its owner organisation sees it: what would have fired, when, with which evidence — nothing is raised',
        params: ruleIdParams,
        body: { type: 'object', additionalProperties: false, required: ['from', 'to'], properties: window },
        response: { 200: dryRunOut },
      },
    },
    async (request) => {
      const p = principalOf(request);
      return dryRun.stored(p, request.params.id, { from: request.body.from, to: request.body.to });
    },
  );
}
