/**
 * Sends notifications by HTTP(S) POST over kept-alive connections, only where the egress policy allows:
 * the receiver's host is resolved once per notification, every address is checked, and a new connection
 * goes to the checked address. Redirects are not followed (a 3xx is a failed notification).
 */
import http from 'node:http';
import https from 'node:https';
import { type EgressPolicy, pinnedLookup } from '../egress/index.ts';
import type { NotificationSender, OutgoingNotification } from './notification.ts';

export function createHttpNotificationSender(egress: EgressPolicy): NotificationSender {
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 256 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 256 }),
  };
  return {
    schemes: ['http', 'https'],
    checkEndpoint(uri: string): Promise<void> {
      return egress.vet(uri);
    },
    async send(n: OutgoingNotification): Promise<void> {
      const dest = await egress.resolve(n.uri, n.timeoutMs);
      const secure = dest.url.protocol === 'https:';
      const payload = Buffer.from(JSON.stringify(n.body));
      return new Promise((resolve, reject) => {
        const req = (secure ? https : http).request(
          dest.url,
          {
            method: 'POST',
            agent: secure ? agents.https : agents.http,
            // A kept-alive socket of this host was opened to an address checked the same way.
            lookup: pinnedLookup(dest),
            headers: { ...n.headers, 'Content-Length': String(payload.length) },
            timeout: n.timeoutMs,
          },
          (res) => {
            res.resume();
            res.on('end', () => {
              const s = res.statusCode ?? 0;
              if (s >= 200 && s < 300) resolve();
              else reject(new Error(`receiver answered HTTP ${s}`));
            });
            res.on('error', reject);
          },
        );
        req.on('timeout', () => req.destroy(new Error(`no answer within ${n.timeoutMs} ms`)));
        req.on('error', reject);
        req.end(payload);
      });
    },
    async close() {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
}
