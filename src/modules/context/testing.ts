/**
 * Tests of the context module (and of modules and API surfaces built on it) run on the real sharing gate
 * over the real access directory: the migrations they need, and a gate with organisations and accounts
 * created through the access module. Tests only.
 */

import type { Store } from '../../ports/store.ts';
import { AccessService, accessMigrations, type OrgKind, type Role } from '../access/index.ts';
import { auditMigrations } from '../audit/index.ts';
import { eventsMigrations } from '../events/index.ts';
import { type Marking, SharingGate, sharingMigrations } from '../sharing/index.ts';
import { contextMigrations } from './migrations.ts';

/** Every migration the context module's tables and the sharing gate need. */
export const CONTEXT_TEST_MIGRATIONS = {
  ...accessMigrations,
  ...sharingMigrations,
  ...auditMigrations,
  ...contextMigrations,
  ...eventsMigrations,
};

export interface TestDirectory {
  gate: SharingGate;
  access: AccessService;
  /** Creates organisations (kind `other`, default TLP:AMBER) unless they exist. */
  addOrgs(...ids: string[]): Promise<void>;
  /** Creates an account (created by the platform itself) and answers its id. */
  addUser(username: string, orgId: string, roles?: Role[]): Promise<string>;
}

export function openTestDirectory(store: Store): TestDirectory {
  const access = new AccessService({ store });
  const gate = new SharingGate({ store, directory: access });
  const known = new Set<string>();
  return {
    gate,
    access,
    async addOrgs(...ids) {
      for (const id of ids) {
        if (known.has(id)) continue;
        const amber: Marking = { tlp: 'AMBER', audience: { orgs: [], communities: [], users: [] } };
        await access.orgs
          .createOrg(null, { id, name: id, kind: 'other' as OrgKind, defaultMarking: amber })
          .catch((e: { code?: string }) => {
            if (e?.code !== 'ACCESS_ORG_EXISTS') throw e;
          });
        known.add(id);
      }
    },
    async addUser(username, orgId, roles = ['operator']) {
      await this.addOrgs(orgId);
      const user = await access.accounts.createUser(null, {
        username,
        orgId,
        roles,
        password: 'Test-password-42',
      });
      return user.id;
    },
  };
}
