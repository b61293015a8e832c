import { AppError } from '../../kernel/errors.ts';
import type { AccessService } from './access-service.ts';
import { generatePassword } from './credentials.ts';

export const FIRST_ORG = { id: 'city', name: 'City administration', kind: 'city' } as const;
export const FIRST_ADMIN = 'admin';

/**
 * On first start: the first organisation (`city`) and the first administrator (`admin`, platform and
 * organisation administrator). The password
 * is SAFECITY_ADMIN_PASSWORD or, when unset, generated and returned once so the caller can print it.
 * Safe to call on every start and from several instances at once.
 */
export async function bootstrapAccess(
  service: AccessService,
  opts: { adminPassword?: string | undefined } = {},
): Promise<{ created: boolean; generatedPassword?: string }> {
  if (await service.accounts.hasPlatformAdmin()) return { created: false };
  try {
    await service.orgs.createOrg(null, { ...FIRST_ORG });
  } catch (e) {
    if (!(e instanceof AppError && e.code === 'ACCESS_ORG_EXISTS')) throw e;
  }
  const password = opts.adminPassword ?? generatePassword();
  try {
    await service.accounts.createUser(null, {
      username: FIRST_ADMIN,
      orgId: FIRST_ORG.id,
      // The platform's administrator, and the first organisation's.
      roles: ['platform-admin', 'admin'],
      password,
      displayName: 'First administrator',
    });
  } catch (e) {
    if (e instanceof AppError && e.code === 'ACCESS_USER_EXISTS') return { created: false };
    throw e;
  }
  return opts.adminPassword ? { created: true } : { created: true, generatedPassword: password };
}
