-- 0003: a merchant's payment providers and routing document. Provider
-- credentials are stored only as text sealed by the vault; the rest of the
-- provider document is kept as validated JSON.

CREATE TABLE gateway.providers (
    merchant_id         text NOT NULL REFERENCES gateway.merchants (id),
    name                text NOT NULL CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,63}$'),
    type                text NOT NULL,
    config              jsonb NOT NULL,
    credentials_sealed  text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (merchant_id, name)
);

CREATE TABLE gateway.routing (
    merchant_id  text PRIMARY KEY REFERENCES gateway.merchants (id),
    doc          jsonb NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);

GRANT SELECT, INSERT, UPDATE, DELETE ON gateway.providers, gateway.routing TO portcullis_gateway;
