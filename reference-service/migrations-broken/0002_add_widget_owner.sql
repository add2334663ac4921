-- Deliberately broken: `owners` is never created, so this migration fails.
-- gonogo uses this directory to prove that a failing migration is a no-go.
ALTER TABLE widgets ADD COLUMN owner_id BIGINT REFERENCES owners (id);
