/**
 * The one error type of the platform. Modules throw `AppError` with a stable code from the catalogue
 * (error-codes.ts); API plugins map the code's kind to their standard's error shape and HTTP status.
 * Modules never throw HTTP errors.
 */
import { ERROR_CODES, type ErrorCode, type ErrorKind } from './error-codes.ts';

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly details: Record<string, unknown> | undefined;

  constructor(
    code: ErrorCode,
    message?: string,
    details?: Record<string, unknown>,
    options?: { cause?: unknown },
  ) {
    const entry = ERROR_CODES[code];
    super(message ?? entry.title, options);
    this.name = 'AppError';
    this.code = code;
    this.kind = entry.kind;
    this.details = details;
  }
}

export function isAppError(e: unknown): e is AppError {
  return e instanceof AppError;
}
