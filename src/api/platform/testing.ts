/**
 * A platform API on a real store, served in-process through the app's own HTTP layer (auth hook,
 * problem+json errors), for tests of this surface and of modules that build on it.
 */
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import type { TestStoreFactory } from '../../adapters/storage/testing.ts';
import {
  AccessService,
  type Authenticator,
  type AuthenticatorOptions,
  accessMigrations,
  bootstrapAccess,
  createAuthenticator,
} from '../../modules/access/index.ts';
import { auditMigrations } from '../../modules/audit/index.ts';
import { ReportService } from '../../modules/reports/index.ts';
import { SharingGate, sharingMigrations } from '../../modules/sharing/index.ts';
import type { Store } from '../../ports/store.ts';
import { buildServer } from '../http/server.ts';
import { platformApi } from './platform-api.ts';

export const TEST_ADMIN_PASSWORD = 'correct-horse-battery-staple';

export interface PlatformTestApp {
  app: FastifyInstance;
  store: Store;
  access: AccessService;
  gate: SharingGate;
  reports: ReportService;
  authenticator: Authenticator;
  /** Bearer header of the first admin. */
  admin: { authorization: string };
  login(username: string, password: string): Promise<{ authorization: string }>;
  close(): Promise<void>;
}

export async function openPlatformTestApp(
  factory: TestStoreFactory,
  opts: Partial<Omit<AuthenticatorOptions, 'service'>> = {},
): Promise<PlatformTestApp> {
  const store = await factory.open({ ...accessMigrations, ...sharingMigrations, ...auditMigrations });
  const access = new AccessService({ store });
  const gate = new SharingGate({ store, directory: access });
  const reports = new ReportService(gate);
  const authenticator = createAuthenticator({ service: access, ...opts });
  await bootstrapAccess(access, { adminPassword: TEST_ADMIN_PASSWORD });
  const app = await buildServer({
    logger: pino({ level: 'silent' }),
    bodyLimit: 1_048_576,
    instanceId: 'test',
    version: 'test',
    authenticate: (h) => authenticator.authenticate(h),
    healthChecks: [],
    isReady: () => true,
    surfaces: [{ name: 'platform', plugin: platformApi, options: { access, gate, reports, authenticator } }],
  });
  await app.ready();
  const login = async (username: string, password: string) => {
    const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password } });
    if (res.statusCode !== 200) throw new Error(`login ${username}: ${res.statusCode} ${res.body}`);
    return { authorization: `Bearer ${res.json().token}` };
  };
  const admin = await login('admin', TEST_ADMIN_PASSWORD);
  return {
    app,
    store,
    access,
    gate,
    reports,
    authenticator,
    admin,
    login,
    async close() {
      await app.close();
      await store.close();
    },
  };
}
