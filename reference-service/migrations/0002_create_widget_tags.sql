-- Tags are many-to-many with widgets; lookups go by tag, hence the index.
CREATE TABLE widget_tags (
    widget_id   BIGINT NOT NULL REFERENCES widgets (id) ON DELETE CASCADE,
    tag         TEXT NOT NULL,
    PRIMARY KEY (widget_id, tag)
);

CREATE INDEX widget_tags_tag_idx ON widget_tags (tag);
