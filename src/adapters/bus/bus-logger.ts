/**
 * The few log lines a bus adapter writes (dead letters, dropped live events, reconnects). The shape is
 * pino's `(object, message)` so the application's pino logger fits as it is.
 */
export interface BusLogger {
  warn(details: Record<string, unknown>, message: string): void;
  error(details: Record<string, unknown>, message: string): void;
}

export const consoleBusLogger: BusLogger = {
  warn: (details, message) => console.warn(`[event-bus] ${message}`, details),
  error: (details, message) => console.error(`[event-bus] ${message}`, details),
};

export const silentBusLogger: BusLogger = { warn: () => {}, error: () => {} };
