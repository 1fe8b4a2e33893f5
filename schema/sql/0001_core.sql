-- Core mirror: projects, users, milestones, raw payloads, issues, merge requests, their link
-- tables, and the incremental-sync cursors. Timestamps are integer milliseconds UTC.

CREATE TABLE projects (
    gitlab_id           INTEGER PRIMARY KEY,
    path_with_namespace TEXT    NOT NULL UNIQUE,
    name                TEXT,
    web_url             TEXT    NOT NULL,
    default_branch      TEXT,
    last_seen_at        INTEGER NOT NULL
);

CREATE TABLE users (
    gitlab_id  INTEGER PRIMARY KEY,
    username   TEXT NOT NULL,
    name       TEXT,
    state      TEXT,
    web_url    TEXT,
    avatar_url TEXT
);

CREATE TABLE milestones (
    gitlab_id  INTEGER PRIMARY KEY,
    project_id INTEGER,
    iid        INTEGER,
    title      TEXT NOT NULL,
    state      TEXT,
    due_date   TEXT,
    web_url    TEXT
);

-- Original JSON of every fetched primary payload, deduplicated by content.
CREATE TABLE raw_payloads (
    id         INTEGER PRIMARY KEY,
    sha256     TEXT    NOT NULL UNIQUE,
    payload    TEXT    NOT NULL,
    created_at INTEGER NOT NULL
);

CREATE TABLE issues (
    gitlab_id                         INTEGER PRIMARY KEY,
    project_id                        INTEGER NOT NULL REFERENCES projects (gitlab_id),
    iid                               INTEGER NOT NULL,
    title                             TEXT    NOT NULL,
    description                       TEXT,
    state                             TEXT    NOT NULL,
    issue_type                        TEXT,
    confidential                      INTEGER NOT NULL DEFAULT 0,
    author_id                         INTEGER REFERENCES users (gitlab_id),
    author_username                   TEXT,
    milestone_id                      INTEGER REFERENCES milestones (gitlab_id),
    web_url                           TEXT    NOT NULL,
    created_at                        INTEGER NOT NULL,
    updated_at                        INTEGER NOT NULL,
    closed_at                         INTEGER,
    closed_by_id                      INTEGER,
    due_date                          TEXT,
    user_notes_count                  INTEGER NOT NULL DEFAULT 0,
    upvotes                           INTEGER NOT NULL DEFAULT 0,
    downvotes                         INTEGER NOT NULL DEFAULT 0,
    last_seen_at                      INTEGER NOT NULL,
    raw_payload_id                    INTEGER REFERENCES raw_payloads (id),
    discussions_synced_for_updated_at INTEGER,
    events_synced_for_updated_at      INTEGER,
    UNIQUE (project_id, iid)
);
CREATE INDEX issues_project_updated ON issues (project_id, updated_at);

CREATE TABLE issue_labels (
    issue_id INTEGER NOT NULL REFERENCES issues (gitlab_id) ON DELETE CASCADE,
    label    TEXT    NOT NULL,
    PRIMARY KEY (issue_id, label)
) WITHOUT ROWID;
CREATE INDEX issue_labels_label ON issue_labels (label);

CREATE TABLE issue_assignees (
    issue_id INTEGER NOT NULL REFERENCES issues (gitlab_id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES users (gitlab_id),
    PRIMARY KEY (issue_id, user_id)
) WITHOUT ROWID;

CREATE TABLE merge_requests (
    gitlab_id                            INTEGER PRIMARY KEY,
    project_id                           INTEGER NOT NULL REFERENCES projects (gitlab_id),
    iid                                  INTEGER NOT NULL,
    title                                TEXT    NOT NULL,
    description                          TEXT,
    state                                TEXT    NOT NULL,
    draft                                INTEGER NOT NULL DEFAULT 0,
    author_id                            INTEGER REFERENCES users (gitlab_id),
    author_username                      TEXT,
    milestone_id                         INTEGER REFERENCES milestones (gitlab_id),
    source_branch                        TEXT,
    target_branch                        TEXT,
    source_project_id                    INTEGER,
    target_project_id                    INTEGER,
    sha                                  TEXT,
    merge_commit_sha                     TEXT,
    squash_commit_sha                    TEXT,
    detailed_merge_status                TEXT,
    web_url                              TEXT    NOT NULL,
    created_at                           INTEGER NOT NULL,
    updated_at                           INTEGER NOT NULL,
    merged_at                            INTEGER,
    merged_by_id                         INTEGER,
    closed_at                            INTEGER,
    closed_by_id                         INTEGER,
    user_notes_count                     INTEGER NOT NULL DEFAULT 0,
    upvotes                              INTEGER NOT NULL DEFAULT 0,
    downvotes                            INTEGER NOT NULL DEFAULT 0,
    last_seen_at                         INTEGER NOT NULL,
    raw_payload_id                       INTEGER REFERENCES raw_payloads (id),
    discussions_synced_for_updated_at    INTEGER,
    events_synced_for_updated_at         INTEGER,
    closes_issues_synced_for_updated_at  INTEGER,
    diffs_synced_for_updated_at          INTEGER,
    UNIQUE (project_id, iid)
);
CREATE INDEX merge_requests_project_updated ON merge_requests (project_id, updated_at);

CREATE TABLE mr_labels (
    merge_request_id INTEGER NOT NULL REFERENCES merge_requests (gitlab_id) ON DELETE CASCADE,
    label            TEXT    NOT NULL,
    PRIMARY KEY (merge_request_id, label)
) WITHOUT ROWID;
CREATE INDEX mr_labels_label ON mr_labels (label);

CREATE TABLE mr_assignees (
    merge_request_id INTEGER NOT NULL REFERENCES merge_requests (gitlab_id) ON DELETE CASCADE,
    user_id          INTEGER NOT NULL REFERENCES users (gitlab_id),
    PRIMARY KEY (merge_request_id, user_id)
) WITHOUT ROWID;

CREATE TABLE mr_reviewers (
    merge_request_id INTEGER NOT NULL REFERENCES merge_requests (gitlab_id) ON DELETE CASCADE,
    user_id          INTEGER NOT NULL REFERENCES users (gitlab_id),
    PRIMARY KEY (merge_request_id, user_id)
) WITHOUT ROWID;

-- Tuple cursor of the standard sync: the (updated_at, gitlab_id) of the last committed item.
CREATE TABLE sync_cursors (
    project_id INTEGER NOT NULL REFERENCES projects (gitlab_id),
    resource   TEXT    NOT NULL CHECK (resource IN ('issues', 'merge_requests')),
    updated_at INTEGER NOT NULL,
    gitlab_id  INTEGER NOT NULL,
    synced_at  INTEGER NOT NULL,
    PRIMARY KEY (project_id, resource)
) WITHOUT ROWID;
