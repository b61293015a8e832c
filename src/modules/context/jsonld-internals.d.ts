// The jsonld package's context and compaction internals, used for fast term expansion and compaction
// once an active context is known (they ship without type declarations).
declare module 'jsonld/lib/context.js' {
  const api: {
    getInitialContext(options: Record<string, unknown>): unknown;
    expandIri(
      activeCtx: unknown,
      value: string,
      relativeTo: { vocab?: boolean; base?: boolean },
      options: object,
    ): unknown;
  };
  export default api;
}
declare module 'jsonld/lib/compact.js' {
  const api: {
    compactIri(args: { activeCtx: unknown; iri: string; relativeTo?: { vocab?: boolean } }): unknown;
  };
  export default api;
}
