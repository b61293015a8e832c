/**
 * The one JSON body reader of every surface: UTF-8 only (RFC 8259), depth and text checked before and
 * after `JSON.parse` (kernel/safe-json.ts). Each surface installs it as its content-type parser and says
 * which error code a malformed document gets, so the answer stays in the surface's format.
 */
import type { FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import { MAX_JSON_DEPTH, parseJsonSafely } from '../../kernel/safe-json.ts';
import { decodeUtf8, isStorableText } from '../../kernel/text.ts';

export interface JsonBodyOptions {
  /** The error of a body that is not JSON, or empty when a body is needed. */
  malformed?: (message: string) => AppError;
  maxDepth?: number;
}

const METHODS_WITHOUT_BODY = new Set(['GET', 'HEAD', 'DELETE', 'OPTIONS']);

/** Refuses a charset other than UTF-8 in the Content-Type. */
function checkCharset(request: FastifyRequest): void {
  const type = request.headers['content-type'] ?? '';
  const m = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(type);
  if (m && !/^utf-?8$/i.test(m[1] ?? '')) {
    throw new AppError(
      'PLATFORM_UNSUPPORTED_MEDIA_TYPE',
      `charset ${m[1]} is not accepted: JSON is exchanged in UTF-8`,
    );
  }
}

/**
 * The body as text: UTF-8, without NUL characters (a UTF-16 document is full of them). Ingestion keeps
 * this text as it came; everything else parses it with `parseJsonBody`.
 */
export function bodyText(request: FastifyRequest, body: Buffer): string {
  checkCharset(request);
  const text = decodeUtf8(body);
  if (text === undefined)
    throw new AppError('PLATFORM_INVALID_TEXT', 'the body is not UTF-8 text (JSON is exchanged in UTF-8)');
  if (!isStorableText(text)) {
    throw new AppError(
      'PLATFORM_INVALID_TEXT',
      'the body holds NUL characters (is it UTF-16? JSON is exchanged in UTF-8)',
    );
  }
  return text;
}

/** Parses a JSON body; an empty body is `undefined` for methods that need none, an error otherwise. */
export function parseJsonBody(request: FastifyRequest, body: Buffer, opts: JsonBodyOptions = {}): unknown {
  const malformed = opts.malformed ?? ((m: string) => new AppError('PLATFORM_BAD_REQUEST', m));
  const text = bodyText(request, body);
  if (text.trim() === '') {
    if (METHODS_WITHOUT_BODY.has(request.method)) return undefined;
    throw malformed('the JSON body is empty');
  }
  const r = parseJsonSafely(text, opts.maxDepth ?? MAX_JSON_DEPTH);
  if (r.ok) return r.value;
  switch (r.problem.kind) {
    case 'syntax':
      throw malformed(`the body is ${r.problem.message}`);
    case 'too_deep':
      throw new AppError('PLATFORM_JSON_TOO_DEEP', `the JSON body is refused: ${r.problem.message}`);
    case 'text':
      throw new AppError('PLATFORM_INVALID_TEXT', r.problem.message);
    default:
      throw malformed(r.problem.message);
  }
}

/** A Fastify content-type parser (parseAs: 'buffer') around `parseJsonBody`. */
export function jsonBodyParser(opts: JsonBodyOptions = {}) {
  return (request: FastifyRequest, body: Buffer, done: (err: Error | null, body?: unknown) => void) => {
    let value: unknown;
    try {
      value = parseJsonBody(request, body, opts);
    } catch (e) {
      done(e as Error, undefined);
      return;
    }
    done(null, value);
  };
}
