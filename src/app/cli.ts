/**
 * The `safecity` command: `npx safecity <command> --help`.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { isAppError } from '../kernel/errors.ts';
import { ORG_KINDS, ROLES } from '../modules/access/index.ts';
import { TLP_LABELS } from '../modules/sharing/index.ts';
import { configHelp, loadConfig } from './config.ts';

function slug(value: string): string {
  if (!/^[a-z0-9][a-z0-9-]{1,62}$/.test(value)) {
    throw new InvalidArgumentError('use 2–63 lowercase letters, digits and dashes, e.g. "metro-police"');
  }
  return value;
}

function collectRoles(value: string, previous: string[] = []): string[] {
  for (const r of value.split(',')) {
    if (!(ROLES as readonly string[]).includes(r))
      throw new InvalidArgumentError(`"${r}" is not a role (${ROLES.join(', ')})`);
    previous.push(r);
  }
  return previous;
}

function durationToSeconds(value: string): number {
  const m = /^(\d+)([smhd])$/.exec(value);
  if (!m) throw new InvalidArgumentError('use a number and a unit: 30d, 12h, 90m, 3600s');
  return Number(m[1]) * { s: 1, m: 60, h: 3600, d: 86400 }[m[2] as 's' | 'm' | 'h' | 'd'];
}

export function buildCli(out: (s: string) => void = (s) => process.stdout.write(`${s}\n`)): Command {
  const program = new Command('safecity')
    .description('SafeCity Hub: share and manage a city’s security information')
    .showHelpAfterError('(add --help for usage)')
    .addHelpText('after', `\nConfiguration (environment variables):\n${configHelp()}`);

  program
    .command('serve')
    .description('start the platform: web app and APIs on one port (PORT, default 8080)')
    .addHelpText('after', `\nConfiguration (environment variables):\n${configHelp()}`)
    .action(async () => {
      const { servePlatform } = await import('./serve.ts');
      await servePlatform(loadConfig());
    });

  program
    .command('migrate')
    .description('apply pending database migrations (the platform also does at start)')
    .action(async () => {
      const { withCore } = await import('./platform.ts');
      await withCore(loadConfig(), async (core) => {
        const applied = await core.store.migrate();
        out(applied.length === 0 ? 'schema up to date' : applied.map((m) => `applied ${m.name}`).join('\n'));
      });
    });

  const org = program.command('org').description('manage organisations');
  org
    .command('add')
    .description('add an organisation')
    .argument('<id>', 'short id (slug), e.g. metro-police', slug)
    .requiredOption('--name <name>', 'display name')
    .addOption(new Option('--kind <kind>', 'kind of organisation').choices(ORG_KINDS).makeOptionMandatory())
    .addOption(
      new Option('--tlp <label>', 'default TLP of objects its accounts create')
        .choices(TLP_LABELS)
        .default('AMBER'),
    )
    .action(async (id: string, opts: { name: string; kind: string; tlp: string }) => {
      const { withCore } = await import('./platform.ts');
      await withCore(loadConfig(), async (core) => {
        const created = await core.cli.addOrg({ id, name: opts.name, kind: opts.kind, tlp: opts.tlp });
        out(`organisation ${created.id} (${created.kind}) created`);
      });
    });

  const user = program.command('user').description('manage users');
  user
    .command('add')
    .description('add a user; prints a generated password once when --password is not given')
    .argument('<username>', 'login name')
    .requiredOption('--org <id>', 'organisation id')
    .requiredOption('--role <role>', `role, repeat or comma-separate (${ROLES.join(', ')})`, collectRoles)
    .option('--password <password>', 'initial password (12+ characters); better: set SAFECITY_NEW_PASSWORD')
    .option('--name <displayName>', 'display name')
    .action(
      async (username: string, opts: { org: string; role: string[]; password?: string; name?: string }) => {
        const { withCore } = await import('./platform.ts');
        await withCore(loadConfig(), async (core) => {
          const password = opts.password ?? process.env.SAFECITY_NEW_PASSWORD;
          const result = await core.cli.addUser({
            username,
            orgId: opts.org,
            roles: opts.role,
            ...(password ? { password } : {}),
            ...(opts.name ? { displayName: opts.name } : {}),
          });
          out(`user ${username} created in ${opts.org} with roles ${opts.role.join(', ')}`);
          if (result.generatedPassword) out(`generated password (shown once): ${result.generatedPassword}`);
        });
      },
    );

  const token = program.command('token').description('manage API tokens of service accounts');
  token
    .command('create')
    .description(
      'create a service account (if needed) and an API token for a machine; prints the secret once',
    )
    .requiredOption('--org <id>', 'organisation the machine acts for')
    .requiredOption('--name <name>', 'service account name, e.g. gateway-7')
    .option('--role <role>', 'role of a new service account (default operator)', collectRoles)
    .option('--expires <duration>', 'lifetime, e.g. 365d (default: no expiry)', durationToSeconds)
    .action(async (opts: { org: string; name: string; role?: string[]; expires?: number }) => {
      const { withCore } = await import('./platform.ts');
      await withCore(loadConfig(), async (core) => {
        const created = await core.cli.createToken({
          orgId: opts.org,
          name: opts.name,
          roles: opts.role ?? ['operator'],
          ...(opts.expires ? { expiresInSeconds: opts.expires } : {}),
        });
        out(`token ${created.id} for ${created.username} in ${opts.org}`);
        out(`secret (shown once): ${created.secret}`);
      });
    });

  const audit = program.command('audit').description('the tamper-evident audit log');
  audit
    .command('verify')
    .description('check the hash chain of the audit log; exits 1 when a record was edited or removed')
    .action(async () => {
      const { withCore } = await import('./platform.ts');
      await withCore(loadConfig(), async (core) => {
        const verdict = await core.cli.verifyAudit();
        if (verdict.ok) out(`audit log intact: ${verdict.records} records`);
        else {
          out(`AUDIT LOG BROKEN after ${verdict.records} good records: ${verdict.reason}`);
          process.exitCode = 1;
        }
      });
    });

  const roads = program.command('roads').description('road networks for first-responder routing');
  roads
    .command('import')
    .description(
      'import an OpenStreetMap extract (.osm.pbf path or URL) into the data folder and build the routing graph',
    )
    .argument('<file-or-url>', 'path or http(s) URL of an .osm.pbf extract')
    .action(async (source: string) => {
      const { importRoads } = await import('./serve.ts');
      await importRoads(loadConfig(), source, out);
    });

  const rules = program.command('rules').description('detection rules (docs/detection.md)');
  rules
    .command('validate')
    .description(
      'check a rule document (JSON) against the rule language; exits 1 with each problem’s field path',
    )
    .argument('<file>', 'the rule document')
    .action(async (file: string) => {
      const { validateRuleFile } = await import('./rules-cli.ts');
      process.exitCode = validateRuleFile(file, out);
    });
  rules
    .command('test')
    .description(
      'replay a running platform’s stored history through a rule document (its dry-run API): what would have fired, when, with which evidence — nothing is raised',
    )
    .argument('<file>', 'the rule document')
    .requiredOption('--from <time>', 'start of the window (ISO 8601)')
    .requiredOption('--to <time>', 'end of the window (ISO 8601)')
    .option('--url <url>', 'the platform (default SAFECITY_URL, else http://127.0.0.1:PORT)')
    .option('--token <token>', 'an API or session token of a writer (default SAFECITY_TOKEN)')
    .action(async (file: string, opts: { from: string; to: string; url?: string; token?: string }) => {
      const { testRuleFile } = await import('./rules-cli.ts');
      const url = opts.url ?? process.env.SAFECITY_URL ?? `http://127.0.0.1:${process.env.PORT ?? '8080'}`;
      process.exitCode = await testRuleFile(
        file,
        { from: opts.from, to: opts.to, url, token: opts.token ?? process.env.SAFECITY_TOKEN },
        out,
      );
    });

  return program;
}

export async function runCli(argv: string[]): Promise<void> {
  const program = buildCli();
  program.exitOverride();
  try {
    await program.parseAsync(argv);
  } catch (e) {
    if (e instanceof CommanderError) {
      process.exitCode = e.exitCode;
      return;
    }
    if (isAppError(e)) {
      process.stderr.write(`safecity: ${e.message}\n`);
      process.exitCode = 2;
      return;
    }
    process.stderr.write(`safecity: ${(e as Error).stack ?? String(e)}\n`);
    process.exitCode = 1;
  }
}
