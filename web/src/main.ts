/**
 * Entry point of the operators' web app: sign in, then the common operational picture. The session token
 * lives in sessionStorage (this tab only, gone when the tab closes).
 */
import { ApiClient, ApiError } from './api-client.ts';
import { startCop } from './cop-app.ts';
import { $, $input } from './dom.ts';
import { newPasswordProblem, type Session } from './password-dialog.ts';
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

/** Keeps a session token for this tab (after sign-in, and after a password change replaced it). */
function keepToken(token: string): void {
  api.token = token;
  sessionStorage.setItem(TOKEN_KEY, token);
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
  const button = $('login-submit') as HTMLButtonElement;
  // After an administrator reset the password, the platform opens no session until the account sets its own.
  let mustChange = false;
  const askNewPassword = () => {
    mustChange = true;
    $('login-new').hidden = false;
    $('login-new-notice').textContent =
      'An administrator reset your password. Choose a new one of your own to sign in.';
    for (const id of ['login-new-password', 'login-new-password-again']) $input(id).required = true;
    button.textContent = 'Set password and sign in';
    $input('login-new-password').focus();
  };
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    error.textContent = '';
    const newPassword = $input('login-new-password').value;
    if (mustChange) {
      const problem = newPasswordProblem(
        newPassword,
        $input('login-new-password-again').value,
        $input('login-password').value,
      );
      if (problem) {
        error.textContent = problem;
        return;
      }
    }
    button.disabled = true;
    try {
      const res = await api.post<Session>('/api/auth/login', {
        username: $input('login-username').value.trim(),
        password: $input('login-password').value,
        ...(mustChange ? { newPassword } : {}),
      });
      keepToken(res.token);
      const me = await loadMe();
      $('login-view').hidden = true;
      await startCop({ api, me, pollMs: pollMs(), onLogout: logout, onToken: keepToken });
    } catch (err) {
      api.token = null;
      if (err instanceof ApiError && err.code === 'AUTH_PASSWORD_CHANGE_REQUIRED') {
        askNewPassword();
        return;
      }
      error.textContent = `Sign-in failed: ${(err as Error).message}`;
      if (!mustChange) $input('login-password').select();
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
      await startCop({ api, me, pollMs: pollMs(), onLogout: logout, onToken: keepToken });
      return;
    } catch {
      api.token = null;
      sessionStorage.removeItem(TOKEN_KEY);
    }
  }
  showLogin();
}

void boot();
