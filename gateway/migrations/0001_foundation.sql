-- 0001: schemas, roles and the foundation tables.
-- Three schemas with separate roles from the start:
--   gateway  the service's own tables (role portcullis_gateway)
--   vault    card data; only portcullis_vault may read it
--   audit    the PCI scope log: services insert, auditors read, nobody updates

DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_gateway') THEN
        CREATE ROLE portcullis_gateway NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_vault') THEN
        CREATE ROLE portcullis_vault NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'portcullis_auditor') THEN
        CREATE ROLE portcullis_auditor NOLOGIN;
    END IF;
END
$$;

REVOKE ALL ON SCHEMA public FROM PUBLIC;

CREATE SCHEMA gateway;
CREATE SCHEMA vault;
CREATE SCHEMA audit;
REVOKE ALL ON SCHEMA gateway, vault, audit FROM PUBLIC;

GRANT USAGE ON SCHEMA gateway TO portcullis_gateway;
GRANT USAGE ON SCHEMA vault TO portcullis_vault;
GRANT USAGE ON SCHEMA audit TO portcullis_gateway, portcullis_vault, portcullis_auditor;

CREATE TABLE gateway.merchants (
    id          text PRIMARY KEY,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE gateway.api_keys (
    id           text PRIMARY KEY,
    merchant_id  text NOT NULL REFERENCES gateway.merchants (id),
    role         text NOT NULL CHECK (role IN ('pk', 'sk', 'ak')),
    key_hash     bytea NOT NULL UNIQUE CHECK (length(key_hash) = 32),
    display      text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    expires_at   timestamptz,
    revoked_at   timestamptz
);
CREATE INDEX api_keys_merchant_idx ON gateway.api_keys (merchant_id, role);

GRANT SELECT, INSERT, UPDATE ON gateway.merchants, gateway.api_keys TO portcullis_gateway;

CREATE TABLE audit.events (
    seq          bigserial PRIMARY KEY,
    at           timestamptz NOT NULL DEFAULT now(),
    actor        text NOT NULL,
    action       text NOT NULL,
    merchant_id  text,
    object       text,
    detail       jsonb NOT NULL DEFAULT '{}'::jsonb
);
GRANT INSERT ON audit.events TO portcullis_gateway, portcullis_vault;
GRANT USAGE ON SEQUENCE audit.events_seq_seq TO portcullis_gateway, portcullis_vault;
GRANT SELECT ON audit.events TO portcullis_auditor;

-- Whatever the vault's migrations create later is the vault role's alone.
ALTER DEFAULT PRIVILEGES IN SCHEMA vault
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO portcullis_vault;
ALTER DEFAULT PRIVILEGES IN SCHEMA vault
    GRANT USAGE, SELECT ON SEQUENCES TO portcullis_vault;
