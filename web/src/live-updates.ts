/**
 * Live refresh: polls every few seconds; when the platform offers a server-sent event stream at
 * /api/stream, each event triggers a refresh at once and polling slows down to a safety net.
 * The stream is read with fetch (EventSource cannot send the bearer token).
 *
 * The platform ends a stream when its session ends (account disabled, password changed, instance shutting
 * down): the app refreshes at once — a session that is over then answers 401 and the app signs out — and
 * opens the stream again with the token of the moment (a password change gave this tab a new one), backing
 * off while the platform refuses.
 */

export interface LiveOptions {
  refresh: () => Promise<void>;
  token: () => string | null;
  onStatus: (status: { ok: boolean; at: Date; via: 'poll' | 'stream'; error?: string }) => void;
  pollMs?: number;
  streamUrl?: string;
}

export interface Live {
  stop(): void;
  /** Refreshes now (after an operator's own change). */
  now(): Promise<void>;
}

export function startLive(opts: LiveOptions): Live {
  const fastPoll = opts.pollMs ?? 5000;
  let pollMs = fastPoll;
  let via: 'poll' | 'stream' = 'poll';
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> | null = null;
  let again = false;
  let stopped = false;
  const abort = new AbortController();
  let wake: (() => void) | undefined;
  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const t = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(t);
        resolve();
      };
    });

  async function tick(): Promise<void> {
    if (stopped) return;
    if (running) {
      again = true;
      return running;
    }
    clearTimeout(timer);
    running = (async () => {
      try {
        await opts.refresh();
        opts.onStatus({ ok: true, at: new Date(), via });
      } catch (err) {
        opts.onStatus({ ok: false, at: new Date(), via, error: (err as Error).message });
      } finally {
        running = null;
        if (!stopped) timer = setTimeout(tick, pollMs);
      }
    })();
    await running;
    if (again && !stopped) {
      again = false;
      await tick();
    }
  }

  /** Reads the stream once; true when it was open (and has now ended), false when it could not open. */
  async function streamOnce(): Promise<boolean> {
    const token = opts.token();
    if (!token) return false;
    let res: Response;
    try {
      res = await fetch(opts.streamUrl ?? '/api/stream', {
        headers: { accept: 'text/event-stream', authorization: `Bearer ${token}` },
        signal: abort.signal,
      });
    } catch {
      return false;
    }
    if (!res.ok || !res.body || !(res.headers.get('content-type') ?? '').includes('text/event-stream')) {
      await res.body?.cancel().catch(() => {});
      return false;
    }
    via = 'stream';
    pollMs = Math.max(fastPoll, 30_000);
    const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = '';
    let debounce: ReturnType<typeof setTimeout> | undefined;
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        const events = buffer.split(/\r?\n\r?\n/);
        buffer = events.pop() ?? '';
        if (events.some((e) => /^data:/m.test(e))) {
          clearTimeout(debounce);
          debounce = setTimeout(() => void tick(), 250);
        }
      }
    } catch {
      // The stream broke (network, server restart): polling carries on at the fast rate.
    }
    clearTimeout(debounce);
    via = 'poll';
    pollMs = fastPoll;
    return true;
  }

  async function stream(): Promise<void> {
    let backoff = 1000;
    while (!stopped && opts.token()) {
      const wasOpen = await streamOnce();
      if (stopped) return;
      if (wasOpen) {
        backoff = 1000;
        void tick();
      }
      await pause(backoff);
      if (!wasOpen) backoff = Math.min(backoff * 2, 60_000);
    }
  }

  void tick();
  void stream();
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
      abort.abort();
      wake?.();
    },
    now: tick,
  };
}
