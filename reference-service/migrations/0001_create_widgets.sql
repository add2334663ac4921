-- Widgets are the service's one domain object.
CREATE TABLE widgets (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE UNIQUE INDEX widgets_name_key ON widgets (name);
