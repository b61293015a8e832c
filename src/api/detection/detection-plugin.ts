/**
 * The detection API: `/api/rules` (rules as marked objects: CRUD, versions, restore, enable/disable,
 * dry-runs) and `/api/alerts` (the Alert entities the detection service raises: list, acknowledge, dismiss,
 * promote). An encapsulated plugin: bodies are validated strictly by the server's edge policy, modules throw
 * AppError, and the app's handler answers RFC 9457 problem+json.
 */
import type { FastifyPluginAsync } from 'fastify';
import { alertRoutes } from './alert-routes.ts';
import type { DetectionApiOptions } from './detection-deps.ts';
import { ruleRoutes } from './rule-routes.ts';

export const detectionApi: FastifyPluginAsync<DetectionApiOptions> = async (app, opts) => {
  ruleRoutes(app, opts);
  alertRoutes(app, opts);
};
