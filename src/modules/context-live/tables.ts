/** The tables this module owns (migrations.ts creates them). */
import type { Generated } from 'kysely';

export type SubscriptionRow = {
  tenant: string;
  id: string;
  owner_org: string;
  created_by: string;
  /** The subscription as the API returns it, with terms expanded (see subscription.ts). */
  body: unknown;
  is_active: boolean;
  expires_at: Date | null;
  times_sent: Generated<number>;
  times_failed: Generated<number>;
  last_notification: Date | null;
  last_success: Date | null;
  last_failure: Date | null;
  last_status: string | null;
  last_error: string | null;
  /** Set while the platform pauses it (its creator's account is disabled): why. */
  paused_reason: string | null;
  created_at: Date;
  modified_at: Date;
};

export type OutboxRow = {
  id: string;
  tenant: string;
  subscription_id: string;
  created_at: Date;
  attempts: number;
  next_attempt_at: Date;
  last_error: string | null;
  /** 'pending' until delivered (then deleted) or given up ('dead'). */
  state: string;
  /** The pending notification items (see delivery-engine.ts PendingItem). */
  payload: unknown;
};

/** One incarnation of an entity with history: its types, owner and marking now (read keys included). */
export type TemporalEntityRow = {
  tenant: string;
  entity_id: string;
  incarnation: string;
  entity_types: string[];
  owner_org: string;
  marking: unknown;
  read_keys: string[];
  /** When the incarnation was created (the entity's createdAt); orders incarnations of one id. */
  created_at: Date;
  modified_at: Date;
  /** Set once the incarnation is gone (deleted, or superseded by a newer one): its history is deleted. */
  deleted_at: Date | null;
  /** The scopes (clause 4.18) of the entity now, or of the temporal entity; what scopeQ is tested on. */
  scopes: string[] | null;
  /**
   * Where the history comes from: 'entity' (recorded from the entity's changes) or 'temporal' (provided
   * through the temporal API: a temporal entity, its own object at the sharing gate).
   */
  kind: Generated<string>;
};

/**
 * A marking an incarnation's history was recorded under: instances and rollups name their segment, so each
 * keeps the marking the entity had when it was observed. `seg` is a hash of incarnation and marking.
 */
export type TemporalSegmentRow = {
  tenant: string;
  entity_id: string;
  seg: string;
  incarnation: string;
  owner_org: string;
  marking: unknown;
  read_keys: string[];
};

export type AttrInstanceRow = {
  tenant: string;
  entity_id: string;
  attr: string;
  dataset_id: string;
  seg: string;
  instance_id: string;
  attr_type: string;
  observed_at: Date;
  modified_at: Date;
  value_num: number | null;
  value_text: string | null;
  /** Null for plain numeric Properties (rebuilt from the columns). */
  instance: unknown;
};

export type RollupRow = {
  tenant: string;
  entity_id: string;
  attr: string;
  dataset_id: string;
  seg: string;
  bucket: Date;
  attr_type: string;
  n: number;
  n_num: number;
  sum: number | null;
  sumsq: number | null;
  min: number | null;
  max: number | null;
};

/** How long an organisation keeps the history of its entities of one type (its administrator sets it). */
export type RetentionRow = {
  tenant: string;
  owner_org: string;
  entity_type: string;
  retention_seconds: number;
};

export type DeadLetterRow = {
  id: string;
  received_at: Date;
  source: string;
  topic: string | null;
  tenant: string | null;
  org_id: string | null;
  principal: string | null;
  reason: string;
  payload: string;
};

export type ContextLiveTables = {
  context_live_subscription: SubscriptionRow;
  context_live_outbox: OutboxRow;
  context_live_temporal_entity: TemporalEntityRow;
  context_live_temporal_segment: TemporalSegmentRow;
  context_live_attr_instance: AttrInstanceRow;
  context_live_attr_rollup: RollupRow;
  context_live_retention: RetentionRow;
  context_live_dead_letter: DeadLetterRow;
};
