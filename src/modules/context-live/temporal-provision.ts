/**
 * The temporal API's provision operations (clause 5.6.11–5.6.16): create or update a temporal entity, add
 * attribute instances, modify one instance, delete an attribute's instances (one datasetId or all), delete
 * one instance, delete the temporal entity.
 *
 * A temporal entity is a marked object of its own at the sharing gate (kind `temporal_entity`, scope the
 * tenant), beside the entity of the same id if there is one: the gate decides every write (role, owner
 * organisation, visibility, marking rule) and records it — registry row, audit record — in the write's
 * transaction, and gives the incarnation and read keys its history rows carry. Deleting it deletes its
 * history; an id created again is a new incarnation that never sees the old instances. Readers see an id's
 * history from both sources, each under its own marking (temporal-service.ts).
 */
import type { Clock } from '../../kernel/clock.ts';
import { AppError, isAppError } from '../../kernel/errors.ts';
import type { EventOutbox } from '../../ports/event-outbox.ts';
import type { AnyDb } from '../../ports/store.ts';
import { checkAttributeName, checkEntityId, type ExpandedAttribute } from '../context/index.ts';
import type { GatePrincipal } from '../sharing/index.ts';
import {
  type ContextLiveEvents,
  TEMPORAL_ENTITY_CHANGED,
  TEMPORAL_ENTITY_DELETED,
} from './context-live-events.ts';
import type { JsonLdContext, LdContextPort, LiveGate } from './ports.ts';
import { type ParsedTemporalEntity, parseInstance, parseTemporalEntity } from './temporal-payload.ts';
import {
  currentOf,
  providedRow,
  TEMPORAL_ENTITY_KIND,
  type TemporalObject,
  TemporalProvisionStore,
} from './temporal-provision-store.ts';

const VALUE_MEMBERS = ['value', 'object', 'languageMap', 'vocab', 'json', 'valueList', 'objectList'];

export class TemporalProvision {
  readonly #gate: LiveGate;
  readonly #ld: LdContextPort;
  readonly #clock: Clock;
  readonly #events: EventOutbox<ContextLiveEvents> | undefined;
  readonly #rows = new TemporalProvisionStore();

  /** `events`: where changes are announced, in their transaction (live streams; none: not announced). */
  constructor(deps: {
    gate: LiveGate;
    ld: LdContextPort;
    clock: Clock;
    events?: EventOutbox<ContextLiveEvents> | undefined;
  }) {
    this.#gate = deps.gate;
    this.#ld = deps.ld;
    this.#clock = deps.clock;
    this.#events = deps.events;
    deps.gate.defineKind(TEMPORAL_ENTITY_KIND, { label: 'temporal entity' });
  }

  /**
   * POST /temporal/entities: creates the temporal entity (true: 201) or adds the instances to it (false:
   * 204), its types joining the ones it had. The role is asked first (this may create).
   */
  async upsert(
    tenant: string,
    p: GatePrincipal,
    body: unknown,
    context: JsonLdContext | undefined,
  ): Promise<{ created: boolean; id: string }> {
    this.#gate.checkCreate(p, TEMPORAL_ENTITY_KIND);
    const ac = await this.#ld.resolve(context);
    const parsed = parseTemporalEntity(body, (t) => ac.expandTerm(t), { requireIdAndType: true });
    const id = parsed.id as string;
    return this.#write(tenant, id, async (trx, cur, now) => {
      if (!cur) {
        const reg = await this.#gate.create(trx, p, {
          kind: TEMPORAL_ENTITY_KIND,
          scope: tenant,
          id,
          ...(parsed.marking !== undefined ? { marking: parsed.marking } : {}),
          details: { attributes: parsed.attributes },
        });
        const o: TemporalObject = {
          id,
          tenant,
          incarnation: reg.incarnation,
          types: parsed.types,
          scopes: parsed.scope ?? [],
          ownerOrg: reg.ownerOrg,
          createdBy: reg.createdBy,
          marking: reg.marking,
          readKeys: reg.readKeys,
        };
        await this.#rows.insertObject(trx, o, now);
        await this.#add(trx, o, parsed, now);
        await this.#announce(trx, TEMPORAL_ENTITY_CHANGED, o);
        return { created: true, id };
      }
      const o = await this.#change(trx, p, cur, parsed, now);
      await this.#add(trx, o, parsed, now);
      await this.#announce(trx, TEMPORAL_ENTITY_CHANGED, o, cur);
      return { created: false, id };
    });
  }

  /** POST /temporal/entities/{id}/attrs: adds instances to an existing temporal entity. */
  async append(
    tenant: string,
    p: GatePrincipal,
    id: string,
    body: unknown,
    context: JsonLdContext | undefined,
  ): Promise<void> {
    checkEntityId(id);
    const ac = await this.#ld.resolve(context);
    const parsed = parseTemporalEntity(body, (t) => ac.expandTerm(t), { requireIdAndType: false });
    if (parsed.id !== undefined && parsed.id !== id) {
      throw new AppError('CONTEXT_INVALID_ENTITY', `the payload names entity ${parsed.id}, the URL ${id}`);
    }
    await this.#write(tenant, id, async (trx, cur, now) => {
      const before = this.#existing(cur, id);
      const o = await this.#change(trx, p, before, parsed, now);
      await this.#add(trx, o, parsed, now);
      await this.#announce(trx, TEMPORAL_ENTITY_CHANGED, o, before);
    });
  }

  /** PATCH /temporal/entities/{id}/attrs/{attrId}/{instanceId}: merges the fragment over one instance. */
  async modifyInstance(
    tenant: string,
    p: GatePrincipal,
    id: string,
    attrTerm: string,
    instanceId: string,
    body: unknown,
    context: JsonLdContext | undefined,
  ): Promise<void> {
    checkEntityId(id);
    checkAttributeName(attrTerm);
    if (body === null || typeof body !== 'object' || Array.isArray(body)) {
      throw new AppError('CONTEXT_INVALID_ENTITY', 'the instance fragment must be a JSON object');
    }
    const raw = body as Record<string, unknown>;
    if (raw.instanceId !== undefined && raw.instanceId !== instanceId) {
      throw new AppError('CONTEXT_INVALID_ENTITY', 'the fragment names another instanceId than the URL');
    }
    const ac = await this.#ld.resolve(context);
    const attr = ac.expandTerm(attrTerm);
    await this.#write(tenant, id, async (trx, cur, now) => {
      const o = this.#existing(cur, id);
      const before = await this.#rows.instance(trx, o, attr, instanceId);
      if (!before) throw this.#noInstance(id, attrTerm, instanceId);
      await this.#gate.update(trx, p, { kind: TEMPORAL_ENTITY_KIND, current: currentOf(o), fields: [attr] });
      // Members the fragment does not give (the type, the value) stay as they were.
      const shell: Record<string, unknown> = { type: before.instance.type };
      for (const k of VALUE_MEMBERS) if (before.instance[k] !== undefined) shell[k] = before.instance[k];
      if (raw.type !== undefined && raw.type !== before.instance.type) {
        for (const k of VALUE_MEMBERS) delete shell[k];
      }
      const members = { ...raw };
      delete members.instanceId;
      const fragment = parseInstance(attrTerm, { ...shell, ...members }, (t) => ac.expandTerm(t));
      const merged = { ...before.instance, ...fragment } as ExpandedAttribute;
      const row = providedRow(tenant, id, before.seg, { attr, instance: merged }, now, instanceId);
      await this.#rows.replaceInstance(trx, o, before, row);
      await this.#rows.updateObject(trx, o, now);
      await this.#announce(trx, TEMPORAL_ENTITY_CHANGED, o, o);
    });
  }

  /**
   * DELETE /temporal/entities/{id}/attrs/{attrId}: the instances of one datasetId (the default one when
   * none is given), or of every datasetId (`deleteAll`).
   */
  async deleteAttribute(
    tenant: string,
    p: GatePrincipal,
    id: string,
    attrTerm: string,
    opts: { datasetId?: string | undefined; deleteAll?: boolean },
    context: JsonLdContext | undefined,
  ): Promise<void> {
    checkEntityId(id);
    checkAttributeName(attrTerm);
    const ac = await this.#ld.resolve(context);
    const attr = ac.expandTerm(attrTerm);
    await this.#write(tenant, id, async (trx, cur, now) => {
      const o = this.#existing(cur, id);
      await this.#gate.update(trx, p, { kind: TEMPORAL_ENTITY_KIND, current: currentOf(o), fields: [attr] });
      const n = await this.#rows.deleteInstances(
        trx,
        o,
        attr,
        opts.deleteAll ? {} : { datasetId: opts.datasetId ?? '' },
      );
      if (n === 0) {
        throw new AppError(
          'CONTEXT_ATTRIBUTE_NOT_FOUND',
          `temporal entity ${id} has no attribute ${attrTerm}${opts.datasetId ? ` with datasetId ${opts.datasetId}` : ''}`,
        );
      }
      await this.#rows.updateObject(trx, o, now);
      await this.#announce(trx, TEMPORAL_ENTITY_CHANGED, o, o);
    });
  }

  /** DELETE /temporal/entities/{id}/attrs/{attrId}/{instanceId}. */
  async deleteInstance(
    tenant: string,
    p: GatePrincipal,
    id: string,
    attrTerm: string,
    instanceId: string,
    context: JsonLdContext | undefined,
  ): Promise<void> {
    checkEntityId(id);
    checkAttributeName(attrTerm);
    const ac = await this.#ld.resolve(context);
    const attr = ac.expandTerm(attrTerm);
    await this.#write(tenant, id, async (trx, cur, now) => {
      const o = this.#existing(cur, id);
      await this.#gate.update(trx, p, { kind: TEMPORAL_ENTITY_KIND, current: currentOf(o), fields: [attr] });
      const n = await this.#rows.deleteInstances(trx, o, attr, { instanceId });
      if (n === 0) throw this.#noInstance(id, attrTerm, instanceId);
      await this.#rows.updateObject(trx, o, now);
      await this.#announce(trx, TEMPORAL_ENTITY_CHANGED, o, o);
    });
  }

  /** DELETE /temporal/entities/{id}: the temporal entity and its history. */
  async deleteEntity(tenant: string, p: GatePrincipal, id: string): Promise<void> {
    checkEntityId(id);
    await this.#write(tenant, id, async (trx, cur) => {
      const o = this.#existing(cur, id);
      await this.#gate.remove(trx, p, { kind: TEMPORAL_ENTITY_KIND, current: currentOf(o) });
      await this.#rows.deleteObject(trx, o);
      await this.#announce(trx, TEMPORAL_ENTITY_DELETED, { ...o, readKeys: [] }, o);
    });
  }

  /** The gate decides and records a change (and a marking the payload names); returns the object after it. */
  async #change(
    trx: AnyDb,
    p: GatePrincipal,
    cur: TemporalObject,
    parsed: ParsedTemporalEntity,
    now: Date,
  ): Promise<TemporalObject> {
    const r = await this.#gate.update(trx, p, {
      kind: TEMPORAL_ENTITY_KIND,
      current: currentOf(cur),
      ...(parsed.marking !== undefined ? { marking: parsed.marking } : {}),
      fields: parsed.attributes.length > 0 ? parsed.attributes : ['type'],
    });
    const o: TemporalObject = {
      ...cur,
      types: [...new Set([...cur.types, ...parsed.types])],
      // Scopes join the ones it had, as types do (a temporal entity is only ever added to).
      scopes: [...new Set([...cur.scopes, ...(parsed.scope ?? [])])],
      marking: r.marking,
      readKeys: r.readKeys,
    };
    await this.#rows.updateObject(trx, o, now);
    return o;
  }

  /** Stores the provided instances under the object's marking now. */
  async #add(trx: AnyDb, o: TemporalObject, parsed: ParsedTemporalEntity, now: Date): Promise<void> {
    if (parsed.instances.length === 0) return;
    const seg = await this.#rows.segment(trx, o);
    await this.#rows.insertInstances(
      trx,
      o,
      parsed.instances.map((i) => providedRow(o.tenant, o.id, seg, i, now)),
    );
  }

  /** Tells live streams who may see the object after the change and who could before (never its content). */
  async #announce(
    trx: AnyDb,
    type: typeof TEMPORAL_ENTITY_CHANGED | typeof TEMPORAL_ENTITY_DELETED,
    after: TemporalObject,
    before?: TemporalObject,
  ): Promise<void> {
    await this.#events?.emit(trx, type, {
      kind: TEMPORAL_ENTITY_KIND,
      scope: after.tenant,
      id: after.id,
      ownerOrg: after.ownerOrg,
      readKeys: after.readKeys,
      previousReadKeys: before?.readKeys ?? [],
      marking: after.marking,
      ...(before ? { previousMarking: before.marking } : {}),
    });
  }

  #existing(cur: TemporalObject | undefined, id: string): TemporalObject {
    if (!cur) throw this.#gate.notFound(TEMPORAL_ENTITY_KIND, id);
    return cur;
  }

  #noInstance(id: string, attrTerm: string, instanceId: string): AppError {
    return new AppError(
      'CONTEXT_ATTRIBUTE_NOT_FOUND',
      `temporal entity ${id} has no instance ${instanceId} of attribute ${attrTerm}`,
    );
  }

  /**
   * Runs a write over the id's temporal entity, locked (undefined when there is none). Two writers creating
   * the same id: the second finds the registry row taken, and plans again with the first's object.
   */
  async #write<T>(
    tenant: string,
    id: string,
    fn: (trx: AnyDb, cur: TemporalObject | undefined, now: Date) => Promise<T>,
  ): Promise<T> {
    for (let tries = 1; ; tries++) {
      try {
        return await this.#gate.store.transaction(async (trx) =>
          fn(trx, await this.#rows.locked(trx, tenant, id), this.#clock.now()),
        );
      } catch (e) {
        const taken =
          (e as { code?: unknown })?.code === '23505' || (isAppError(e) && e.code === 'ACCESS_OBJECT_EXISTS');
        if (tries >= 3 || !taken) throw e;
      }
    }
  }
}
