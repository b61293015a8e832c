/**
 * The registry's schema. Named `access_0003…` so that it sorts right after the table it changes (migrations
 * run in name order) and before any module's migration that registers its existing objects.
 */
import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';

export const sharingMigrations: Record<string, Migration> = {
  access_0003_registry_by_kind: {
    async up(db) {
      // Objects are named by (kind, scope, id): two kinds may use one id without revealing each other.
      await sql`alter table report drop constraint if exists report_id_fkey`.execute(db);
      await sql`alter table shared_object add column scope text not null default ''`.execute(db);
      await sql`alter table shared_object add column incarnation text`.execute(db);
      await sql`update shared_object set incarnation = gen_random_uuid()::text`.execute(db);
      await sql`alter table shared_object alter column incarnation set not null`.execute(db);
      await sql`alter table shared_object drop constraint shared_object_pkey`.execute(db);
      await sql`alter table shared_object add primary key (kind, scope, id)`.execute(db);
      await sql`create index shared_object_id on shared_object (id)`.execute(db);
      await sql`create index shared_object_owner on shared_object (owner_org, kind)`.execute(db);
      await sql`drop index if exists shared_object_kind_owner`.execute(db);
    },
  },
};
