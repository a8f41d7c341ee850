-- A rotation clears the sealed successors that the session's earlier tokens kept for
-- the grace window. Only the last spent token or two still carry one, but a session
-- keeps every spent token (for reuse detection), so finding them through the session
-- index read the whole chain: hundreds of rows for a session refreshed all day. This
-- index holds only the rows that still carry a sealed successor.
CREATE INDEX refresh_tokens_sealed_idx ON refresh_tokens (tenant_id, session_id) WHERE successor_sealed IS NOT NULL;
