import { sql } from 'kysely';
import type { Migration } from 'kysely/migration';

export const accessMigrations: Record<string, Migration> = {
  access_0001_orgs_users: {
    async up(db) {
      await db.schema
        .createTable('access_org')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('default_marking', 'jsonb', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('access_org_client')
        .addColumn('org_id', 'text', (c) => c.notNull().references('access_org.id').onDelete('cascade'))
        .addColumn('client_id', 'text', (c) => c.notNull().references('access_org.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('access_org_client_pk', ['org_id', 'client_id'])
        .execute();
      await db.schema
        .createIndex('access_org_client_client')
        .on('access_org_client')
        .column('client_id')
        .execute();
      await db.schema
        .createTable('access_community')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('access_community_member')
        .addColumn('community_id', 'text', (c) =>
          c.notNull().references('access_community.id').onDelete('cascade'),
        )
        .addColumn('org_id', 'text', (c) => c.notNull().references('access_org.id').onDelete('cascade'))
        .addPrimaryKeyConstraint('access_community_member_pk', ['community_id', 'org_id'])
        .execute();
      await db.schema
        .createIndex('access_community_member_org')
        .on('access_community_member')
        .column('org_id')
        .execute();
      await db.schema
        .createTable('access_user')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('display_name', 'text')
        .addColumn('org_id', 'text', (c) => c.notNull().references('access_org.id'))
        .addColumn('roles', sql`text[]`, (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text')
        .addColumn('disabled', 'boolean', (c) => c.notNull().defaultTo(false))
        .addColumn('external_subject', 'text', (c) => c.unique())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('access_user_org').on('access_user').column('org_id').execute();
      await db.schema
        .createTable('access_api_token')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'text', (c) => c.notNull().references('access_user.id').onDelete('cascade'))
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('prefix', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('expires_at', 'timestamptz')
        .addColumn('revoked_at', 'timestamptz')
        .addColumn('last_used_at', 'timestamptz')
        .execute();
      await db.schema
        .createTable('access_secret')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .execute();
    },
  },
  access_0002_shared_objects: {
    async up(db) {
      await db.schema
        .createTable('shared_object')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('owner_org', 'text', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('tlp', 'text', (c) => c.notNull())
        .addColumn('pap', 'text')
        .addColumn('audience', 'jsonb', (c) => c.notNull())
        .addColumn('read_keys', sql`text[]`, (c) => c.notNull())
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await sql`create index shared_object_read_keys on shared_object using gin (read_keys)`.execute(db);
      await db.schema
        .createIndex('shared_object_kind_owner')
        .on('shared_object')
        .columns(['kind', 'owner_org'])
        .execute();
      await db.schema
        .createTable('report')
        .addColumn('id', 'text', (c) => c.primaryKey().references('shared_object.id').onDelete('cascade'))
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('category', 'text', (c) => c.notNull())
        .addColumn('location', 'jsonb')
        .addColumn('created_at', 'timestamptz', (c) => c.notNull())
        .addColumn('updated_at', 'timestamptz', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('report_created').on('report').columns(['created_at', 'id']).execute();
    },
  },
  access_0004_roles_of_a_city: {
    // Platform administration is a role of its own; before it, the first organisation's administrators were
    // the platform's. A password set by an administrator must be replaced by the account's own.
    async up(db) {
      await sql`alter table access_user add column must_change_password boolean not null default false`.execute(
        db,
      );
      await sql`alter table access_user add column sessions_since timestamptz`.execute(db);
      await sql`update access_user set roles = array_append(roles, 'platform-admin')
        where org_id = 'city' and 'admin' = any(roles) and not ('platform-admin' = any(roles))`.execute(db);
    },
  },
};
