export type AccessTables = {
  access_org: {
    id: string;
    name: string;
    kind: string;
    default_marking: unknown;
    created_at: Date;
    updated_at: Date;
  };
  /** org_id declared client_id as one of its clients. */
  access_org_client: { org_id: string; client_id: string };
  access_community: { id: string; name: string; description: string; created_at: Date };
  access_community_member: { community_id: string; org_id: string };
  access_user: {
    id: string;
    username: string;
    display_name: string | null;
    org_id: string;
    roles: string[];
    kind: string;
    password_hash: string | null;
    must_change_password: boolean;
    /** Session tokens issued before this instant are refused (password changed or reset). */
    sessions_since: Date | null;
    disabled: boolean;
    external_subject: string | null;
    created_at: Date;
    updated_at: Date;
  };
  access_api_token: {
    id: string;
    user_id: string;
    name: string;
    prefix: string;
    token_hash: string;
    created_at: Date;
    expires_at: Date | null;
    revoked_at: Date | null;
    last_used_at: Date | null;
  };
  access_secret: { name: string; value: string; created_at: Date };
  report: {
    id: string;
    title: string;
    body: string;
    category: string;
    location: unknown;
    created_at: Date;
    updated_at: Date;
  };
};
