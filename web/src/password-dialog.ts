/**
 * Passwords in the app: the new password asked at sign-in after an administrator reset it (the platform
 * answers 403 AUTH_PASSWORD_CHANGE_REQUIRED until the account sets one of its own), and the dialog that
 * changes one's own password. A change ends every other session of the account; the platform answers with a
 * new session token, which replaces this tab's so that it stays signed in.
 */
import type { ApiClient } from './api-client.ts';
import { $, $input } from './dom.ts';

export const PASSWORD_MIN_LENGTH = 12;

/** Why a new password typed twice cannot be sent, or undefined when it can (the platform checks the rest). */
export function newPasswordProblem(first: string, again: string, current?: string): string | undefined {
  if (first.length < PASSWORD_MIN_LENGTH)
    return `The new password needs ${PASSWORD_MIN_LENGTH} characters at least`;
  if (first !== again) return 'The two new passwords differ';
  if (current !== undefined && first === current) return 'The new password must differ from the current one';
  return undefined;
}

/** What `/api/auth/login` and `/api/auth/password` answer. */
export interface Session {
  token: string;
  expiresAt?: string;
}

export class PasswordDialog {
  private readonly dialog = $('password-dialog') as HTMLDialogElement;
  private readonly form = $('password-form') as HTMLFormElement;
  private readonly error = $('password-error');

  constructor(
    private readonly api: ApiClient,
    /** The new session token: this tab keeps it (the old one no longer works). */
    private readonly onToken: (token: string) => void,
    private readonly onChanged: () => void,
  ) {
    $('password-cancel').addEventListener('click', () => this.dialog.close());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
  }

  open(): void {
    this.form.reset();
    this.error.textContent = '';
    this.dialog.showModal();
    $input('password-current').focus();
  }

  private async submit(): Promise<void> {
    const current = $input('password-current').value;
    const next = $input('password-new').value;
    const problem = newPasswordProblem(next, $input('password-again').value, current);
    if (problem) {
      this.error.textContent = problem;
      return;
    }
    const button = this.form.querySelector<HTMLButtonElement>('button[type=submit]');
    if (button) button.disabled = true;
    try {
      // The platform ends the old token's sessions before it answers: calls refused meanwhile are not a sign-out.
      await this.api.replacingToken(async () => {
        const session = await this.api.post<Session>('/api/auth/password', {
          currentPassword: current,
          newPassword: next,
        });
        this.onToken(session.token);
      });
      this.form.reset();
      this.dialog.close();
      this.onChanged();
    } catch (err) {
      this.error.textContent = (err as Error).message;
    } finally {
      if (button) button.disabled = false;
    }
  }
}
