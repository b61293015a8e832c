/** The events this module emits (its part of the platform's event map, src/modules/events/event-map.ts). */
import { ACCOUNT_CHANGED, TOKEN_REVOKED } from './live-sessions.ts';

export const ORG_CHANGED = 'access.org.changed';
export const COMMUNITY_CHANGED = 'access.community.changed';

/** Data of `access.org.changed` and `access.community.changed`: every instance drops its cached facts. */
export interface AccessChangedEvent {
  id: string;
}

/** Data of `access.user.changed`: every instance drops its cached facts and re-checks the account's sessions. */
export interface AccountChangedEvent {
  id: string;
  orgId: string;
  /** The change ends the account's sessions (disabled, or a new password). */
  sessionsEnded: boolean;
}

/** Data of `access.token.revoked`: every instance ends the sessions of that token at once. */
export interface TokenRevokedEvent {
  id: string;
  userId: string;
  orgId: string;
}

export type AccessEvents = {
  [ORG_CHANGED]: AccessChangedEvent;
  [COMMUNITY_CHANGED]: AccessChangedEvent;
  [ACCOUNT_CHANGED]: AccountChangedEvent;
  [TOKEN_REVOKED]: TokenRevokedEvent;
};
