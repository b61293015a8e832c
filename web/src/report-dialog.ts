/**
 * The report dialog: title, details, category, position, TLP, PAP and audience — for a new report, or
 * to change one (its marking too: the change is audited and takes effect at once for everyone).
 */
import type { ApiClient } from './api-client.ts';
import { $, $input, h } from './dom.ts';
import { formatLonLat, type LonLat, parseLonLat } from './geo.ts';
import { PAP_CHOICES, TLP_CHOICES, TLP_MEANING } from './marking-badge.ts';
import type { Marking, Me, Org, Report } from './platform-types.ts';
import { listOf } from './platform-types.ts';

export class ReportDialog {
  private readonly dialog = $('report-dialog') as HTMLDialogElement;
  private readonly form = $('report-form') as HTMLFormElement;
  private readonly error = $('report-error');
  private audiencesLoaded: Promise<void> | undefined;
  /** The report being changed, or undefined for a new one. */
  private editing: Report | undefined;

  constructor(
    private readonly api: ApiClient,
    private readonly me: Me,
    private readonly onSaved: (r: Report, created: boolean) => void | Promise<void>,
  ) {
    const tlp = $('report-tlp') as HTMLSelectElement;
    for (const t of TLP_CHOICES)
      tlp.append(h('option', { value: t, title: TLP_MEANING[t] ?? '' }, `TLP:${t}`));
    const pap = $('report-pap') as HTMLSelectElement;
    for (const p of PAP_CHOICES) pap.append(h('option', { value: p }, `PAP:${p}`));
    $('report-cancel').addEventListener('click', () => this.dialog.close());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
  }

  /** A new report at `at`, marked with the organisation's default marking. */
  open(at?: LonLat): Promise<void> {
    this.editing = undefined;
    const d = this.me.defaultMarking;
    const marking: Marking = {
      tlp: d?.tlp ?? 'AMBER',
      ...(d?.pap ? { pap: d.pap } : {}),
      audience: {
        orgs: [...new Set([this.me.orgId, ...(d?.audience.orgs ?? [])])],
        communities: d?.audience.communities ?? ['all'],
        users: d?.audience.users ?? [],
      },
    };
    return this.show('New security information report', 'Share report', marking, at ? formatLonLat(at) : '');
  }

  /** Change an existing report. */
  edit(r: Report): Promise<void> {
    this.editing = r;
    const at = r.location?.coordinates;
    return this.show('Change report', 'Save changes', r.marking, at ? formatLonLat(at) : '', r);
  }

  private async show(title: string, action: string, m: Marking, location: string, r?: Report): Promise<void> {
    this.form.reset();
    $('report-dialog-title').textContent = title;
    this.form.querySelector<HTMLButtonElement>('button[type=submit]')!.textContent = action;
    $input('report-title').value = r?.title ?? '';
    ($('report-body') as HTMLTextAreaElement).value = r?.body ?? '';
    const category = $('report-category') as HTMLSelectElement;
    if (r && ![...category.options].some((o) => o.value === r.category)) {
      category.append(h('option', { value: r.category }, r.category));
    }
    category.value = r?.category ?? 'suspicious-activity';
    $input('report-location').value = location;
    this.error.textContent = '';
    this.dialog.showModal();
    $input('report-title').focus();
    this.audiencesLoaded ??= this.loadAudiences();
    await this.audiencesLoaded;
    ($('report-tlp') as HTMLSelectElement).value = m.tlp.replace(/^TLP:/i, '').toUpperCase();
    ($('report-pap') as HTMLSelectElement).value = m.pap ? m.pap.replace(/^PAP:/i, '').toUpperCase() : '';
    for (const box of this.form.querySelectorAll<HTMLInputElement>('input[name=community]')) {
      box.checked = m.audience.communities.includes(box.value);
    }
    for (const box of this.form.querySelectorAll<HTMLInputElement>('input[name=org]')) {
      box.checked = m.audience.orgs.includes(box.value);
    }
    $input('report-users').value = m.audience.users.join(',');
  }

  /** The communities and organisations an operator can address, listed once. */
  private async loadAudiences(): Promise<void> {
    try {
      const communities = listOf<{ id: string; name: string }>(await this.api.get('/api/communities'));
      if (communities.length > 0) {
        $('report-communities').replaceChildren(
          ...communities.map((c) =>
            h(
              'label',
              {},
              h('input', { type: 'checkbox', name: 'community', value: c.id }),
              ` ${c.id === 'all' ? 'Every organisation (community “all”)' : `${c.name} (community)`}`,
            ),
          ),
        );
      }
    } catch {
      // The built-in "all" checkbox stays: it is always a valid community.
    }
    const box = $('report-orgs');
    try {
      const orgs = listOf<Org>(await this.api.get('/api/orgs'), 'orgs');
      box.replaceChildren(
        ...orgs.map((o) =>
          h('label', {}, h('input', { type: 'checkbox', name: 'org', value: o.id }), ` ${o.name}`),
        ),
      );
    } catch {
      box.replaceChildren(h('span', { class: 'muted small' }, 'Organisations could not be listed.'));
    }
  }

  private async submit(): Promise<void> {
    const data = new FormData(this.form);
    const title = String(data.get('title') ?? '').trim();
    if (!title) {
      this.error.textContent = 'A title is needed.';
      return;
    }
    const locText = String(data.get('location') ?? '').trim();
    const at = locText ? parseLonLat(locText) : null;
    if (locText && !at) {
      this.error.textContent = 'Location must be lon,lat in degrees, e.g. -8.61,41.15';
      return;
    }
    const pap = String(data.get('pap') ?? '');
    const users = String(data.get('users') ?? '')
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean);
    const editing = this.editing;
    const body = {
      title,
      body: String(data.get('body') ?? ''),
      category: String(data.get('category') ?? 'other'),
      // A cleared position on a change removes it; a new report simply has none.
      ...(at
        ? { location: { type: 'Point', coordinates: at } }
        : editing?.location
          ? { location: null }
          : {}),
      marking: {
        tlp: String(data.get('tlp') ?? 'AMBER'),
        ...(pap ? { pap } : {}),
        audience: {
          orgs: data.getAll('org').map(String),
          communities: data.getAll('community').map(String),
          users,
        },
      },
    };
    const submit = this.form.querySelector<HTMLButtonElement>('button[type=submit]')!;
    submit.disabled = true;
    try {
      const saved = editing
        ? await this.api.patch<Report>(`/api/reports/${encodeURIComponent(editing.id)}`, body)
        : await this.api.post<Report>('/api/reports', body);
      this.dialog.close();
      await this.onSaved(saved, !editing);
    } catch (err) {
      this.error.textContent = `${editing ? 'Not saved' : 'Not shared'}: ${(err as Error).message}`;
    } finally {
      submit.disabled = false;
    }
  }
}
