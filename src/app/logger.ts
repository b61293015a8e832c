/**
 * Structured JSON logs (pino). Secrets never reach a log: authorization headers, cookies, passwords,
 * tokens and secrets are redacted wherever they appear in a logged object.
 */
import { type Logger, pino } from 'pino';

export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  'headers.authorization',
  'authorization',
  'password',
  'newPassword',
  'token',
  'secret',
  'jwtSecret',
  'adminPassword',
  'databaseUrl',
  '*.password',
  '*.newPassword',
  '*.token',
  '*.secret',
  '*.jwtSecret',
  '*.adminPassword',
  '*.databaseUrl',
];

export function createLogger(opts: {
  level: string;
  instanceId: string;
  destination?: NodeJS.WritableStream;
}): Logger {
  return pino(
    {
      level: opts.level,
      base: { instance: opts.instanceId },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    opts.destination ?? process.stdout,
  );
}
