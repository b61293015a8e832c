/**
 * A client's terms for the live part of the broker (subscriptions, notifications, temporal): expands and
 * compacts names with the client's @context, renders entities in its representation, and compiles its q and
 * geo-queries into predicates over expanded entities.
 */
import { type EntityFormat, renderEntity } from './entity-representation.ts';
import { asExpanded } from './entity-view.ts';
import { matchesGeoQuery, parseGeoQuery } from './geo-query.ts';
import type { ContextResolver, LdContext } from './json-ld-context.ts';
import { matchesQuery, parseQuery } from './query-language.ts';

export class ClientTerms {
  readonly #resolver: ContextResolver;

  constructor(resolver: ContextResolver) {
    this.#resolver = resolver;
  }

  /** Expands an entity type or attribute name with a client's @context. */
  async expandTerm(term: string, context: LdContext | undefined): Promise<string> {
    return (await this.#resolver.resolve(context)).expandTerm(term);
  }

  async compactTerm(iri: string, context: LdContext | undefined): Promise<string> {
    return (await this.#resolver.resolve(context)).compactIri(iri);
  }

  /** Renders an expanded entity in a client's terms and representation. */
  async compactEntity(
    entity: { id: string; type: string | string[]; [k: string]: unknown },
    context: LdContext | undefined,
    format: EntityFormat,
  ): Promise<Record<string, unknown>> {
    const ctx = await this.#resolver.resolve(context);
    return renderEntity(asExpanded(entity), ctx, { format, sysAttrs: false });
  }

  /** Compiles `q` in a client's @context into a predicate over expanded entities. */
  async compileQ(
    q: string,
    context: LdContext | undefined,
  ): Promise<(e: { id: string; type: string | string[] }) => boolean> {
    const ctx = await this.#resolver.resolve(context);
    const ast = parseQuery(q, ctx.expandTerm);
    return (e) => matchesQuery(asExpanded(e), ast);
  }

  async compileGeoQ(
    geoQ: { geometry: string; coordinates: unknown; georel: string; geoproperty?: string },
    context: LdContext | undefined,
  ): Promise<(e: { id: string; type: string | string[] }) => boolean> {
    const ctx = await this.#resolver.resolve(context);
    const gq = parseGeoQuery(geoQ, ctx.expandTerm);
    return (e) => matchesGeoQuery(asExpanded(e), gq);
  }
}
