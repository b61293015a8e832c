export * from './clock.ts';
export * from './error-codes.ts';
export * from './errors.ts';
export * from './ids.ts';
export * from './safe-json.ts';
export * from './text.ts';
