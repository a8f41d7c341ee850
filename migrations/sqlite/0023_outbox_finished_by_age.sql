-- A message's delivery record is deleted 30 days after it was queued, once it was sent
-- or given up, by the periodic sweep (ADR 25). This index holds only finished messages,
-- by age, so the sweep reads only what it deletes and queueing a message costs no
-- extra index write (the row enters the index when its delivery ends).
CREATE INDEX IF NOT EXISTS outbox_finished_created_at_idx ON outbox (created_at)
    WHERE status IN ('sent', 'failed');
