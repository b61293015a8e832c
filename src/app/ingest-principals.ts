/** The accounts IoT ingestion acts as: the connecting service account, or the external broker's bridge. */
import type { Principal } from '../api/http/principal.ts';
import type { AccessService } from '../modules/access/index.ts';
import type { IngestPrincipal } from '../modules/context-live/index.ts';

/** What ingestion needs to know of the account a sensor or gateway connects with. */
export function ingestPrincipal(p: Principal): IngestPrincipal {
  return { userId: p.userId, orgId: p.orgId, roles: p.roles, defaultMarking: p.defaultMarking };
}

/**
 * The service account the external-broker bridge (MQTT_URL) writes as: `mqtt-bridge` of the first
 * organisation, created on first use. Devices on an external broker are not authenticated by the platform;
 * what they publish is owned by the city organisation under its default marking.
 */
export async function bridgePrincipal(access: AccessService): Promise<IngestPrincipal> {
  const org = await access.orgs.getOrg('city');
  let user: Awaited<ReturnType<AccessService['accounts']['getUser']>>;
  try {
    user = await access.accounts.getUser('mqtt-bridge');
  } catch {
    user = (
      await access.accounts.createServiceAccountToken(null, {
        orgId: org.id,
        name: 'mqtt-bridge',
        roles: ['operator'],
      })
    ).serviceAccount;
  }
  return { userId: user.id, orgId: user.orgId, roles: user.roles, defaultMarking: org.defaultMarking };
}
