/**
 * Schema validation at the edge, one policy for every surface: bodies are JSON and are never coerced (a
 * number is not a string, `true` is not an integer); query strings and path parameters are text, and only
 * plain decimal numbers (at most 15 digits before and after the point, so finite and exactly
 * representable) and `true`/`false` become numbers and booleans. `Infinity`, `1e999`, `0x10`, ` 5` stay
 * strings, which a number schema then refuses. Unknown fields are an error, never dropped.
 */

import { Ajv, type ValidateFunction } from 'ajv';
import addFormats from 'ajv-formats';
import type { FastifySchema, FastifySchemaCompiler } from 'fastify';

export interface EdgeValidationOptions {
  /**
   * Body schemas only document the payload (OpenAPI) and the surface's own model validates it: NGSI-LD
   * payloads are checked by the context module, which knows JSON-LD.
   */
  documentedBodies?: boolean;
}

const DECIMAL = /^-?(?:0|[1-9]\d{0,14})(?:\.\d{1,15})?$/;

type JsonSchema = {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
};

function typesOf(schema: JsonSchema | undefined): string[] {
  if (!schema?.type) return [];
  return Array.isArray(schema.type) ? schema.type : [schema.type];
}

/** Turns decimal text into numbers and true/false into booleans where the schema asks for them. */
function coerceText(data: unknown, schema: JsonSchema): void {
  if (!data || typeof data !== 'object' || !schema.properties) return;
  const record = data as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!Object.hasOwn(schema.properties, key)) continue;
    const value = record[key];
    if (typeof value !== 'string') continue;
    const types = typesOf(schema.properties[key]);
    if (types.includes('string')) continue;
    if ((types.includes('integer') || types.includes('number')) && DECIMAL.test(value))
      record[key] = Number(value);
    else if (types.includes('boolean') && (value === 'true' || value === 'false'))
      record[key] = value === 'true';
  }
}

export function edgeValidatorCompiler(
  opts: EdgeValidationOptions = {},
): FastifySchemaCompiler<FastifySchema> {
  const ajv = new Ajv({
    allErrors: false,
    removeAdditional: false,
    useDefaults: true,
    coerceTypes: false,
    strict: false,
  });
  addFormats.default(ajv);
  return ({ schema, httpPart }) => {
    if (httpPart === 'body' && opts.documentedBodies) return () => true;
    const validate = ajv.compile(schema as object) as ValidateFunction;
    if (httpPart === 'body' || httpPart === 'headers') return validate;
    const wrapped = (data: unknown) => {
      coerceText(data, schema as JsonSchema);
      return validate(data);
    };
    Object.defineProperty(wrapped, 'errors', { get: () => validate.errors });
    return wrapped;
  };
}
