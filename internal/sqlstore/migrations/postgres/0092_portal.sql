-- Portal articles (producer/portal): categories managed by units, articles
-- with their current texts (Vietnamese, optional English, each with a
-- unique slug), every revision kept, and the workflow history.
CREATE TABLE portal_categories (
    code    TEXT PRIMARY KEY,
    name    TEXT NOT NULL,
    name_en TEXT NOT NULL DEFAULT '',
    unit    TEXT NOT NULL,
    topic   TEXT NOT NULL DEFAULT ''
);

CREATE TABLE articles (
    id           TEXT PRIMARY KEY,
    category     TEXT NOT NULL REFERENCES portal_categories (code),
    status       TEXT NOT NULL,
    vi           TEXT NOT NULL,
    en           TEXT,
    slug_vi      TEXT NOT NULL UNIQUE,
    slug_en      TEXT UNIQUE,
    cover        TEXT,
    urgent       INTEGER NOT NULL DEFAULT 0,
    revision     INTEGER NOT NULL,
    version      INTEGER NOT NULL,
    created_by   TEXT NOT NULL,
    submitted_by TEXT NOT NULL DEFAULT '',
    approved_by  TEXT NOT NULL DEFAULT '',
    comment      TEXT NOT NULL DEFAULT '',
    publish_at   TIMESTAMPTZ,
    published_at TIMESTAMPTZ,
    created_at   TIMESTAMPTZ NOT NULL,
    updated_at   TIMESTAMPTZ NOT NULL
);
CREATE INDEX articles_category ON articles (category, status, publish_at);

CREATE TABLE article_revisions (
    article_id TEXT NOT NULL REFERENCES articles (id),
    number     INTEGER NOT NULL,
    at         TIMESTAMPTZ NOT NULL,
    by_account TEXT NOT NULL,
    note       TEXT NOT NULL DEFAULT '',
    vi         TEXT NOT NULL,
    en         TEXT,
    PRIMARY KEY (article_id, number)
);

CREATE TABLE article_history (
    article_id  TEXT NOT NULL REFERENCES articles (id),
    seq         INTEGER NOT NULL,
    at          TIMESTAMPTZ NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    from_status TEXT NOT NULL DEFAULT '',
    to_status   TEXT NOT NULL,
    note        TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (article_id, seq)
);
