-- Messages waiting in the queue or in flight. The id is a UUIDv7 made by
-- Layover, so ids sort by enqueue time. A message is visible once visible_at
-- has passed, and receipt is the receipt of its latest receive.
CREATE TABLE layover_messages (
    id            uuid        PRIMARY KEY,
    body          bytea       NOT NULL,
    enqueued_at   timestamptz NOT NULL DEFAULT now(),
    visible_at    timestamptz NOT NULL DEFAULT now(),
    receive_count integer     NOT NULL DEFAULT 0,
    receipt       text
);

CREATE INDEX layover_messages_visible_at ON layover_messages (visible_at);
CREATE INDEX layover_messages_enqueued_at ON layover_messages (enqueued_at);

-- The dead-letter queue. A message keeps its id and enqueue time when it
-- moves here, so dead retention counts from the first enqueue.
CREATE TABLE layover_dead (
    id            uuid        PRIMARY KEY,
    body          bytea       NOT NULL,
    receive_count integer     NOT NULL,
    enqueued_at   timestamptz NOT NULL,
    dead_at       timestamptz NOT NULL DEFAULT now(),
    reason        text        NOT NULL
);

CREATE INDEX layover_dead_enqueued_at ON layover_dead (enqueued_at);

-- Counters that outlive the rows they count.
CREATE TABLE layover_counters (
    name  text   PRIMARY KEY,
    value bigint NOT NULL
);

INSERT INTO layover_counters (name, value) VALUES ('expired', 0);

-- Events that the destination will never accept, kept for a person to read.
CREATE TABLE layover_rejections (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    message_id  text        NOT NULL,
    event_id    text        NOT NULL,
    event_name  text        NOT NULL,
    reason      text        NOT NULL,
    event       bytea,
    recorded_at timestamptz NOT NULL
);

CREATE INDEX layover_rejections_recorded_at ON layover_rejections (recorded_at);
