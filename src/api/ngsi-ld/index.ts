/** The NGSI-LD API surface for entities: register `ngsiLdPlugin` with the prefix `/ngsi-ld/v1`. */

export type { ProblemDetails } from './ngsi-ld-errors.ts';
export { ngsiLdErrorHandler, toProblemDetails } from './ngsi-ld-errors.ts';
export type { NgsiLdPluginOptions } from './ngsi-ld-plugin.ts';
export { ngsiLdPlugin } from './ngsi-ld-plugin.ts';
export { negotiate, paginationLinks, refuseUnknownParameters, requireUriParam } from './ngsi-ld-request.ts';
