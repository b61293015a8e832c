import { AppError } from '../../kernel/errors.ts';
import type { PlatformEvent, SerializedEvent, SubscribeOptions } from '../../ports/event-bus.ts';
import { assertValidEventType, normalizePatterns } from './event-pattern.ts';

export type ResolvedSubscription =
  | { mode: 'group'; group: string; patterns: string[]; maxDeliver: number }
  | { mode: 'broadcast'; patterns: string[] };

const GROUP_NAME = /^[A-Za-z0-9_-]{1,64}$/;
// The id travels as the Nats-Msg-Id header: printable ASCII, no whitespace.
const EVENT_ID = /^[\x21-\x7e]{1,128}$/;

/** Validates subscribe options (the same rules for every adapter) and fills in defaults. */
export function resolveSubscription(
  options: SubscribeOptions,
  defaultMaxDeliver: number,
): ResolvedSubscription {
  const patterns = normalizePatterns(options.types ?? []);
  const mode = options.mode ?? 'group';
  if (mode === 'broadcast') return { mode, patterns };
  if (mode !== 'group') {
    throw new AppError('BUS_INVALID_SUBSCRIPTION', `Unknown subscription mode ${JSON.stringify(mode)}`);
  }
  const group = options.group;
  if (group === undefined || !GROUP_NAME.test(group)) {
    throw new AppError(
      'BUS_INVALID_SUBSCRIPTION',
      'Group mode needs a group name of 1 to 64 letters, digits, "-" or "_"',
      { group },
    );
  }
  const maxDeliver = options.maxDeliver ?? defaultMaxDeliver;
  if (!Number.isInteger(maxDeliver) || maxDeliver < 1) {
    throw new AppError('BUS_INVALID_SUBSCRIPTION', 'maxDeliver must be an integer of at least 1', {
      maxDeliver,
    });
  }
  return { mode, group, patterns, maxDeliver };
}

/**
 * Checks an event before publishing and returns it serialised (what every subscriber will receive). An event
 * given serialised is checked by its id and type and published as it is.
 */
export function serializeEvent(event: PlatformEvent | SerializedEvent): string {
  if (typeof event !== 'object' || event === null) {
    throw new AppError('BUS_INVALID_EVENT', 'An event must be an object');
  }
  if (typeof event.id !== 'string' || !EVENT_ID.test(event.id)) {
    throw new AppError('BUS_INVALID_EVENT', 'An event needs an id: 1 to 128 printable characters, no spaces');
  }
  assertValidEventType(event.type);
  if ('json' in event) {
    if (typeof event.json !== 'string')
      throw new AppError('BUS_INVALID_EVENT', 'A serialised event needs its JSON');
    return event.json;
  }
  if (typeof event.time !== 'string' || typeof event.source !== 'string') {
    throw new AppError('BUS_INVALID_EVENT', 'An event needs a time and a source (strings)', { id: event.id });
  }
  try {
    return JSON.stringify(event);
  } catch (err) {
    throw new AppError(
      'BUS_INVALID_EVENT',
      'The event data cannot be serialised as JSON',
      { id: event.id },
      {
        cause: err,
      },
    );
  }
}
