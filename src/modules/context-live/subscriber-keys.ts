/** The SubscriberKeysPort over the access module's principal facts. */
import { type PrincipalFacts, principalReadKeys } from '../access/index.ts';
import type { SubscriberKeysPort } from './ports.ts';

/**
 * An organisation's read keys now: its own, its communities' and its patrons' (for AMBER). A notification
 * goes to a system of the organisation, not to a named user, so `user:` keys (TLP:RED) are left out.
 * `facts` is the access service's `principalFacts` (cached per organisation, dropped on access changes).
 */
export function subscriberKeysFromFacts(
  facts: (who: { userId: string; orgId: string }) => Promise<PrincipalFacts>,
): SubscriberKeysPort {
  return {
    async orgReadKeys(orgId: string): Promise<string[]> {
      const f = await facts({ userId: `org:${orgId}`, orgId });
      return principalReadKeys(f).filter((k) => !k.startsWith('user:'));
    },
  };
}
