-- Dependents of issues and MRs: threaded discussions and notes, the three resource-event kinds,
-- MR -> issue "closes" references and MR file changes. Parents are referenced by GitLab id
-- (entity_type says which table), because the same tables serve issues and MRs.

CREATE TABLE discussions (
    id              INTEGER PRIMARY KEY,            -- local id: documents.source_id of a discussion
    gitlab_id       TEXT    NOT NULL UNIQUE,        -- GitLab's 40-hex discussion id
    project_id      INTEGER NOT NULL,
    noteable_type   TEXT    NOT NULL CHECK (noteable_type IN ('issue', 'merge_request')),
    noteable_id     INTEGER NOT NULL,
    individual_note INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER,
    updated_at      INTEGER
);
CREATE INDEX discussions_noteable ON discussions (noteable_type, noteable_id);

CREATE TABLE notes (
    gitlab_id          INTEGER PRIMARY KEY,
    discussion_id      INTEGER NOT NULL REFERENCES discussions (id) ON DELETE CASCADE,
    project_id         INTEGER NOT NULL,
    note_type          TEXT,                        -- NULL | DiscussionNote | DiffNote
    body               TEXT    NOT NULL,
    author_id          INTEGER,
    author_username    TEXT,
    system             INTEGER NOT NULL DEFAULT 0,
    resolvable         INTEGER NOT NULL DEFAULT 0,
    resolved           INTEGER NOT NULL DEFAULT 0,
    created_at         INTEGER NOT NULL,
    updated_at         INTEGER NOT NULL,
    position_old_path  TEXT,
    position_new_path  TEXT,
    position_old_line  INTEGER,
    position_new_line  INTEGER,
    position_json      TEXT                         -- the whole DiffNote position, as sent
);
CREATE INDEX notes_discussion ON notes (discussion_id);
CREATE INDEX notes_position_path ON notes (position_new_path) WHERE position_new_path IS NOT NULL;

CREATE TABLE resource_state_events (
    gitlab_id               INTEGER PRIMARY KEY,
    project_id              INTEGER NOT NULL,
    entity_type             TEXT    NOT NULL CHECK (entity_type IN ('issue', 'merge_request')),
    entity_id               INTEGER NOT NULL,
    user_id                 INTEGER,
    username                TEXT,
    created_at              INTEGER NOT NULL,
    state                   TEXT    NOT NULL,
    source_commit           TEXT,
    source_merge_request_id INTEGER
);
CREATE INDEX resource_state_events_entity ON resource_state_events (entity_type, entity_id);

CREATE TABLE resource_label_events (
    gitlab_id   INTEGER PRIMARY KEY,
    project_id  INTEGER NOT NULL,
    entity_type TEXT    NOT NULL CHECK (entity_type IN ('issue', 'merge_request')),
    entity_id   INTEGER NOT NULL,
    user_id     INTEGER,
    username    TEXT,
    created_at  INTEGER NOT NULL,
    action      TEXT    NOT NULL CHECK (action IN ('add', 'remove')),
    label_id    INTEGER,
    label_name  TEXT,
    label_color TEXT
);
CREATE INDEX resource_label_events_entity ON resource_label_events (entity_type, entity_id);

CREATE TABLE resource_milestone_events (
    gitlab_id       INTEGER PRIMARY KEY,
    project_id      INTEGER NOT NULL,
    entity_type     TEXT    NOT NULL CHECK (entity_type IN ('issue', 'merge_request')),
    entity_id       INTEGER NOT NULL,
    user_id         INTEGER,
    username        TEXT,
    created_at      INTEGER NOT NULL,
    action          TEXT    NOT NULL CHECK (action IN ('add', 'remove')),
    milestone_id    INTEGER,
    milestone_title TEXT
);
CREATE INDEX resource_milestone_events_entity ON resource_milestone_events (entity_type, entity_id);

-- MR -> issue links from closes_issues. The target issue may not be mirrored locally.
CREATE TABLE entity_references (
    id                INTEGER PRIMARY KEY,
    project_id        INTEGER NOT NULL,
    source_type       TEXT    NOT NULL CHECK (source_type IN ('issue', 'merge_request')),
    source_id         INTEGER NOT NULL,
    target_type       TEXT    NOT NULL CHECK (target_type IN ('issue', 'merge_request')),
    target_id         INTEGER NOT NULL,
    target_project_id INTEGER,
    target_iid        INTEGER,
    reference_type    TEXT    NOT NULL CHECK (reference_type IN ('closes')),
    UNIQUE (source_type, source_id, target_type, target_id, reference_type)
);
CREATE INDEX entity_references_target ON entity_references (target_type, target_id);

CREATE TABLE mr_file_changes (
    id               INTEGER PRIMARY KEY,
    merge_request_id INTEGER NOT NULL REFERENCES merge_requests (gitlab_id) ON DELETE CASCADE,
    old_path         TEXT    NOT NULL,
    new_path         TEXT    NOT NULL,
    a_mode           TEXT,
    b_mode           TEXT,
    new_file         INTEGER NOT NULL DEFAULT 0,
    renamed_file     INTEGER NOT NULL DEFAULT 0,
    deleted_file     INTEGER NOT NULL DEFAULT 0,
    UNIQUE (merge_request_id, old_path, new_path)
);
CREATE INDEX mr_file_changes_new_path ON mr_file_changes (new_path);
