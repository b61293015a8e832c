/**
 * The first hook of every request: what no surface should ever see is refused here, before
 * authentication and routing code run, and answered in the format of the surface the URL belongs to.
 *
 * - a request target longer than MAX_URL_LENGTH (414);
 * - a malformed or non-UTF-8 percent-encoding, a NUL character or a lone surrogate anywhere in the URL
 *   or in a header (400 PLATFORM_INVALID_TEXT): PostgreSQL refuses NUL in text, and no code needs it.
 *
 * It also sets `X-Content-Type-Options: nosniff` on the raw response, so every answer carries it, those
 * of hijacked replies (Server-Sent Events) included.
 */
import type { FastifyReply, FastifyRequest } from 'fastify';
import { AppError } from '../../kernel/errors.ts';
import { isStorableText } from '../../kernel/text.ts';

/** Longest request target (path and query) accepted, in characters: 8 KiB, as RFC 9112 recommends at least. */
export const MAX_URL_LENGTH = 8 * 1024;

/** Longest path segment (a path parameter such as an entity id, percent-encoded), in characters. */
export const MAX_PARAM_LENGTH = 4 * 1024;

export function setSecurityHeaders(reply: FastifyReply): void {
  reply.raw.setHeader('x-content-type-options', 'nosniff');
}

export function checkRequestText(request: FastifyRequest): void {
  const url = request.url;
  if (url.length > MAX_URL_LENGTH) {
    throw new AppError(
      'PLATFORM_URI_TOO_LONG',
      `the request target has ${url.length} characters, more than ${MAX_URL_LENGTH}: send long queries in a body`,
    );
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(url);
  } catch {
    throw new AppError('PLATFORM_INVALID_TEXT', 'the URL has a malformed or non-UTF-8 percent-encoding');
  }
  if (!isStorableText(decoded))
    throw new AppError('PLATFORM_INVALID_TEXT', 'the URL holds a NUL character (%00) or a lone surrogate');
  for (const [name, value] of Object.entries(request.headers)) {
    const text = Array.isArray(value) ? value.join(',') : value;
    if (typeof text === 'string' && !isStorableText(text))
      throw new AppError(
        'PLATFORM_INVALID_TEXT',
        `the ${name} header holds a NUL character or a lone surrogate`,
      );
  }
}
