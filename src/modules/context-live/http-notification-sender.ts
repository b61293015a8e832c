/** Sends notifications by HTTP(S) POST over kept-alive connections. */
import http from 'node:http';
import https from 'node:https';
import type { NotificationSender, OutgoingNotification } from './notification.ts';

export function createHttpNotificationSender(): NotificationSender {
  const agents = {
    http: new http.Agent({ keepAlive: true, maxSockets: 256 }),
    https: new https.Agent({ keepAlive: true, maxSockets: 256 }),
  };
  return {
    schemes: ['http', 'https'],
    send(n: OutgoingNotification): Promise<void> {
      const url = new URL(n.uri);
      const secure = url.protocol === 'https:';
      const payload = Buffer.from(JSON.stringify(n.body));
      return new Promise((resolve, reject) => {
        const req = (secure ? https : http).request(
          url,
          {
            method: 'POST',
            agent: secure ? agents.https : agents.http,
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
