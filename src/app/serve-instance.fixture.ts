/**
 * One platform instance in its own process, for tests that kill instances (failover.test.ts): configured
 * from the environment like `safecity serve`, without building the web app. Prints
 * `{"listening":"http://…"}` on stdout once it takes requests; logs (warn and up) go to stderr.
 */
import { loadConfig } from './config.ts';
import { createLogger } from './logger.ts';
import { createPlatform } from './platform.ts';

const config = loadConfig(process.env);
const log = createLogger({
  level: config.logLevel,
  instanceId: config.instanceId,
  destination: process.stderr,
});
const platform = await createPlatform(config, { log });
const address = await platform.listen();
process.stdout.write(`${JSON.stringify({ listening: address })}\n`);
process.on('SIGTERM', () => {
  void platform.shutdown().then(() => process.exit(0));
});
