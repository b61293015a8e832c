/**
 * Entry point of the operators' web app: sign in, then the common operational picture. The session token
 * lives in sessionStorage (this tab only, gone when the tab closes).
 */
import { ApiClient } from './api-client.ts';
import { startCop } from './cop-app.ts';
import { $, $input } from './dom.ts';
import type { Me } from './platform-types.ts';

const TOKEN_KEY = 'safecity.token';
const NOTICE_KEY = 'safecity.notice';

const api = new ApiClient({
  onUnauthorized: () => {
    sessionStorage.removeItem(TOKEN_KEY);
    sessionStorage.setItem(NOTICE_KEY, 'Your session has ended. Please sign in again.');
    location.reload();
  },
});

/** `?poll=ms` shortens the refresh interval (tests, wall displays); default five seconds. */
function pollMs(): number {
  const v = Number(new URLSearchParams(location.search).get('poll'));
  return Number.isFinite(v) && v >= 250 ? v : 5000;
}

async function loadMe(): Promise<Me> {
  const body = await api.get<Me | { user: Me }>('/api/auth/me');
  return 'user' in body && body.user ? body.user : (body as Me);
}

function logout(): void {
  sessionStorage.removeItem(TOKEN_KEY);
  location.reload();
}

function showLogin(): void {
  $('login-view').hidden = false;
  const notice = sessionStorage.getItem(NOTICE_KEY);
  const error = $('login-error');
  if (notice) {
    error.textContent = notice;
    sessionStorage.removeItem(NOTICE_KEY);
  }
  const form = $('login-form') as HTMLFormElement;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const button = form.querySelector('button')!;
    button.disabled = true;
    error.textContent = '';
    try {
      const res = await api.post<{ token: string }>('/api/auth/login', {
        username: $input('login-username').value.trim(),
        password: $input('login-password').value,
      });
      api.token = res.token;
      sessionStorage.setItem(TOKEN_KEY, res.token);
      const me = await loadMe();
      $('login-view').hidden = true;
      await startCop({ api, me, pollMs: pollMs(), onLogout: logout });
    } catch (err) {
      api.token = null;
      error.textContent = `Sign-in failed: ${(err as Error).message}`;
      $input('login-password').select();
    } finally {
      button.disabled = false;
    }
  });
  $input('login-username').focus();
}

async function boot(): Promise<void> {
  const saved = sessionStorage.getItem(TOKEN_KEY);
  if (saved) {
    api.token = saved;
    try {
      const me = await loadMe();
      await startCop({ api, me, pollMs: pollMs(), onLogout: logout });
      return;
    } catch {
      api.token = null;
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  showLogin();
}

void boot();
