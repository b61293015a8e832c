/** The "new report" dialog: title, details, category, position, TLP, PAP and audience. */
import type { ApiClient } from './api-client.ts';
import { $, $input, h } from './dom.ts';
import { formatLonLat, type LonLat, parseLonLat } from './geo.ts';
import { PAP_CHOICES, TLP_CHOICES, TLP_MEANING } from './marking-badge.ts';
import type { Me, Org, Report } from './platform-types.ts';
import { listOf } from './platform-types.ts';

export class ReportDialog {
  private readonly dialog = $('report-dialog') as HTMLDialogElement;
  private readonly form = $('report-form') as HTMLFormElement;
  private readonly error = $('report-error');
  private orgsLoaded = false;

  constructor(
    private readonly api: ApiClient,
    private readonly me: Me,
    private readonly onCreated: (r: Report) => void | Promise<void>,
  ) {
    const tlp = $('report-tlp') as HTMLSelectElement;
    for (const t of TLP_CHOICES)
      tlp.append(h('option', { value: t, title: TLP_MEANING[t] ?? '' }, `TLP:${t}`));
    tlp.value = 'AMBER';
    const pap = $('report-pap') as HTMLSelectElement;
    for (const p of PAP_CHOICES) pap.append(h('option', { value: p }, `PAP:${p}`));
    $('report-cancel').addEventListener('click', () => this.dialog.close());
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      void this.submit();
    });
  }

  open(at?: LonLat): void {
    this.form.reset();
    // Start from the organisation's default marking: the operator only changes it on purpose.
    const d = this.me.defaultMarking;
    ($('report-tlp') as HTMLSelectElement).value = d?.tlp ?? 'AMBER';
    ($('report-pap') as HTMLSelectElement).value = d?.pap ?? '';
    const communities = d?.audience.communities ?? ['all'];
    for (const box of this.form.querySelectorAll<HTMLInputElement>('input[name=community]')) {
      box.checked = communities.includes(box.value);
    }
    $input('report-users').value = (d?.audience.users ?? []).join(',');
    $input('report-location').value = at ? formatLonLat(at) : '';
    this.error.textContent = '';
    void this.loadOrgs();
    this.dialog.showModal();
    $input('report-title').focus();
  }

  private async loadOrgs(): Promise<void> {
    if (this.orgsLoaded) return;
    const wanted = this.me.defaultMarking?.audience.communities ?? ['all'];
    try {
      const communities = listOf<{ id: string; name: string }>(await this.api.get('/api/communities'));
      if (communities.length > 0) {
        $('report-communities').replaceChildren(
          ...communities.map((c) =>
            h(
              'label',
              {},
              h('input', {
                type: 'checkbox',
                name: 'community',
                value: c.id,
                ...(wanted.includes(c.id) ? { checked: '' } : {}),
              }),
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
          h(
            'label',
            {},
            h('input', {
              type: 'checkbox',
              name: 'org',
              value: o.id,
              ...(o.id === this.me.orgId || this.me.defaultMarking?.audience.orgs.includes(o.id)
                ? { checked: '' }
                : {}),
            }),
            ` ${o.name}`,
          ),
        ),
      );
      this.orgsLoaded = true;
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
    const body = {
      title,
      body: String(data.get('body') ?? ''),
      category: String(data.get('category') ?? 'other'),
      ...(at ? { location: { type: 'Point', coordinates: at } } : {}),
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
      const created = await this.api.post<Report>('/api/reports', body);
      this.dialog.close();
      await this.onCreated(created ?? ({ ...body, id: '' } as unknown as Report));
    } catch (err) {
      this.error.textContent = `Not shared: ${(err as Error).message}`;
    } finally {
      submit.disabled = false;
    }
  }
}
