/** Test support for the live stream: a reader of `/api/stream` that collects its events. */

export interface ReceivedEvent {
  event: string;
  data: Record<string, unknown>;
}

export interface OpenedStream {
  status: number;
  contentType: string | null;
  events: ReceivedEvent[];
  /** True once the server ended the stream (or it was closed). */
  ended(): boolean;
  close(): void;
}

/** Opens /api/stream with a bearer header and collects its events as they arrive. */
export async function openStream(address: string, authorization: string, query = ''): Promise<OpenedStream> {
  const controller = new AbortController();
  const res = await fetch(`${address}/api/stream${query}`, {
    headers: { authorization },
    signal: controller.signal,
  });
  const events: ReceivedEvent[] = [];
  let ended = false;
  const reader = res.body?.getReader();
  const decoder = new TextDecoder();
  void (async () => {
    let buffer = '';
    try {
      for (;;) {
        if (!reader) break;
        const { done, value } = await reader.read();
        if (done) break;
        buffer += decoder.decode(value, { stream: true });
        let cut = buffer.indexOf('\n\n');
        while (cut >= 0) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const event = /^event: (.*)$/m.exec(block)?.[1];
          const data = /^data: (.*)$/m.exec(block)?.[1];
          if (event && data) events.push({ event, data: JSON.parse(data) });
          cut = buffer.indexOf('\n\n');
        }
      }
    } catch {
      // aborted
    }
    ended = true;
  })();
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    events,
    ended: () => ended,
    close: () => controller.abort(),
  };
}

/** Waits until `check` holds (polling every 20 ms), or fails naming what it waited for. */
export async function until(check: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!check()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
