/**
 * An HTTP(S) GET through the egress policy, for small documents (remote @contexts): each hop of a redirect
 * is checked like the first, the connection is pinned to the checked address, the whole exchange has one
 * deadline and the body a size limit.
 */
import http from 'node:http';
import https from 'node:https';
import type { EgressPolicy } from './egress-policy.ts';
import { pinnedLookup } from './egress-policy.ts';

export interface EgressGetOptions {
  timeoutMs: number;
  maxBytes: number;
  accept: string;
  /** Redirects followed (default 3), each checked by the policy. */
  maxRedirects?: number;
}

/** Thrown when the exchange takes longer than `timeoutMs`. */
export class EgressTimeoutError extends Error {
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'TimeoutError';
  }
}

/** Answers the body of a 2xx answer as text; throws on any other answer, refusal or limit. */
export async function egressGet(
  policy: EgressPolicy,
  target: string,
  opts: EgressGetOptions,
): Promise<string> {
  const deadline = Date.now() + opts.timeoutMs;
  let url = target;
  for (let hop = 0; ; hop++) {
    const left = deadline - Date.now();
    if (left <= 0) throw new EgressTimeoutError(opts.timeoutMs);
    const dest = await policy.resolve(url, left);
    const answer = await getOnce(dest.url, pinnedLookup(dest), deadline, opts);
    if ('location' in answer) {
      if (hop >= (opts.maxRedirects ?? 3)) throw new Error(`more than ${opts.maxRedirects ?? 3} redirects`);
      url = new URL(answer.location, dest.url).href;
      continue;
    }
    return answer.text;
  }
}

function getOnce(
  url: URL,
  lookup: ReturnType<typeof pinnedLookup>,
  deadline: number,
  opts: EgressGetOptions,
): Promise<{ text: string } | { location: string }> {
  return new Promise((resolve, reject) => {
    const secure = url.protocol === 'https:';
    const timer = setTimeout(
      () => req.destroy(new EgressTimeoutError(opts.timeoutMs)),
      deadline - Date.now(),
    );
    const done =
      <T>(f: (v: T) => void) =>
      (v: T) => {
        clearTimeout(timer);
        f(v);
      };
    const ok = done(resolve);
    const fail = done(reject);
    const req = (secure ? https : http).get(
      url,
      { headers: { accept: opts.accept }, lookup, agent: false },
      (res) => {
        const status = res.statusCode ?? 0;
        if (status >= 300 && status < 400 && res.headers.location) {
          res.resume();
          ok({ location: res.headers.location });
          return;
        }
        if (status < 200 || status >= 300) {
          res.resume();
          fail(new Error(`HTTP ${status}`));
          return;
        }
        const declared = Number(res.headers['content-length'] ?? 0);
        if (declared > opts.maxBytes) {
          req.destroy();
          fail(new Error(`larger than ${opts.maxBytes} bytes`));
          return;
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > opts.maxBytes) {
            req.destroy();
            fail(new Error(`larger than ${opts.maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on('end', () => ok({ text: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', fail);
      },
    );
    req.on('error', fail);
  });
}
