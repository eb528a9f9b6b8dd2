-- 0002: the card vault's tables, in schema vault (readable by portcullis_vault
-- only, through the default privileges of 0001). Nothing here is readable
-- without the KEK: card records are XChaCha20-Poly1305 ciphertexts under a
-- data key, data keys are wrapped by the KEK, which never reaches the
-- database. BIN (6 digits), last 4, brand and expiry are kept beside the
-- ciphertext for card metadata; together they are the PCI truncation limit.

-- One row: the current data-key version new records are sealed with, the
-- minimum version that may still be decrypted, and the two long-lived keys
-- (PAN fingerprints, sealed secrets), all wrapped by the KEK.
CREATE TABLE vault.keyring (
    id                   boolean PRIMARY KEY DEFAULT true CHECK (id),
    current_version      integer NOT NULL CHECK (current_version >= 1),
    min_decrypt_version  integer NOT NULL CHECK (min_decrypt_version >= 1),
    fingerprint_key      bytea NOT NULL CHECK (length(fingerprint_key) = 72),
    secrets_key          bytea NOT NULL CHECK (length(secrets_key) = 72),
    created_at           timestamptz NOT NULL DEFAULT now(),
    CHECK (min_decrypt_version <= current_version)
);

-- Versioned data keys. Retiring a version destroys its wrapped key (NULL):
-- records still sealed under it would be lost, so vaultd refuses to retire
-- while any remain.
CREATE TABLE vault.data_keys (
    version     integer PRIMARY KEY CHECK (version >= 1),
    wrapped     bytea CHECK (wrapped IS NULL OR length(wrapped) = 72),
    created_at  timestamptz NOT NULL DEFAULT now(),
    retired_at  timestamptz,
    CHECK ((wrapped IS NULL) = (retired_at IS NOT NULL))
);

-- Card records. No foreign key to data_keys: the check would lock the
-- current key's row from every concurrent tokenization (vaultd writes only
-- versions it holds). The CVC is never here: it lives in vaultd's memory.
-- The checks are length checks on purpose: bin and last4 can never hold a
-- PAN; pattern checks (regex, LIKE) cost a third of the insert rate.
CREATE TABLE vault.cards (
    token        text PRIMARY KEY,
    merchant_id  text NOT NULL,
    key_version  integer NOT NULL,
    nonce        bytea NOT NULL CHECK (length(nonce) = 24),
    sealed       bytea NOT NULL,
    fingerprint  bytea NOT NULL CHECK (length(fingerprint) = 32),
    brand        text NOT NULL,
    bin          text NOT NULL CHECK (length(bin) = 6),
    last4        text NOT NULL CHECK (length(last4) = 4),
    exp_month    smallint NOT NULL,
    exp_year     smallint NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now()
);
-- rewrap and retire look for records below a version
CREATE INDEX cards_key_version_idx ON vault.cards (key_version);

-- Keys are destroyed by overwriting, never by deleting their rows: the
-- history of versions stays visible to auditors of the vault.
REVOKE DELETE ON vault.keyring, vault.data_keys FROM portcullis_vault;
