// Storing and reading messages (section 5). A batch is one transaction:
// the session row is locked first, every message is an upsert that never
// moves a row between sessions, and the stats are recomputed before COMMIT.

import { pool, transaction, type Queryable } from "./db";
import { badRequest, conflict, notFound, tooLarge, unprocessable } from "./errors";
import { DEFAULT_TITLE, type Session, type SessionRow, findSession, parseTitle, sessionId, toSession } from "./sessions";
import {
  type ChatMessage,
  type Json,
  chronological,
  firstCodePoints,
  isObject,
  parseChatMessage,
  parseTimestamp,
} from "./validation";

export const MAX_BATCH = 100;
const TITLE_FROM_MESSAGE_CHARS = 50;
const FAILED_MESSAGE = "Message failed";

interface MessageRow {
  id: string;
  session_id: string;
  role: string;
  content: string;
  model: string | null;
  input_tokens: number;
  output_tokens: number;
  total_tokens: number;
  user_message_id: string | null;
  content_type: string;
  elapsed_ms: number;
  completion_id: string | null;
  message_timestamp: Date;
  error_message: string | null;
}

/** A stored message as the client reads it (C-MSG-9). */
function toItem(row: MessageRow) {
  return {
    id: row.id,
    session_id: row.session_id,
    role: row.role,
    content: row.content,
    ...(row.role === "user" ? { originalModel: row.model } : { model: row.model }),
    input_tokens: row.input_tokens,
    output_tokens: row.output_tokens,
    total_tokens: row.total_tokens,
    user_message_id: row.user_message_id,
    contentType: row.content_type,
    elapsed_ms: row.elapsed_ms,
    completion_id: row.completion_id,
    timestamp: row.message_timestamp.toISOString(),
    error: row.error_message !== null,
    error_message: row.error_message,
  };
}

export interface StoreRequest {
  sessionId: string;
  title: string | null;
  messages: ChatMessage[];
}

export function parseStoreRequest(body: Json): StoreRequest {
  const hasOne = body.message !== undefined && body.message !== null;
  const hasMany = body.messages !== undefined && body.messages !== null;
  if (hasOne === hasMany) throw badRequest("Send either message or messages, not both and not neither");
  let raw: unknown[];
  if (hasMany) {
    if (!Array.isArray(body.messages)) throw badRequest("messages must be an array");
    if (body.messages.length === 0) throw badRequest("messages must not be empty");
    if (body.messages.length > MAX_BATCH) throw tooLarge(`messages holds ${body.messages.length} messages, at most ${MAX_BATCH}`);
    raw = body.messages;
  } else {
    if (!isObject(body.message)) throw badRequest("message must be an object");
    raw = [body.message];
  }
  const messages = raw.map((m, i) => parseChatMessage(m, hasMany ? `messages[${i}]` : "message"));
  return {
    sessionId: sessionId(body.sessionId, "sessionId"),
    title: parseTitle(body, "sessionTitle", false),
    messages,
  };
}

/** C-MSG-6: sessionTitle, else the first user message (50 chars + "..."), else "New Chat". */
function titleFor(req: StoreRequest): string {
  if (req.title) return req.title;
  const first = chronological(req.messages).find((m) => m.role === "user");
  if (!first || first.content.trim() === "") return DEFAULT_TITLE;
  const text = first.content;
  const short = firstCodePoints(text, TITLE_FROM_MESSAGE_CHARS);
  return short.length < text.length ? `${short}...` : short;
}

const UPSERT = `
  INSERT INTO chat_messages (id, session_id, role, content, model, input_tokens, output_tokens,
    total_tokens, user_message_id, content_type, elapsed_ms, completion_id, message_timestamp, error_message)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)
  ON CONFLICT (id) DO UPDATE SET
    role = EXCLUDED.role, content = EXCLUDED.content, model = EXCLUDED.model,
    input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
    total_tokens = EXCLUDED.total_tokens, user_message_id = EXCLUDED.user_message_id,
    content_type = EXCLUDED.content_type, elapsed_ms = EXCLUDED.elapsed_ms,
    completion_id = EXCLUDED.completion_id, message_timestamp = EXCLUDED.message_timestamp,
    error_message = EXCLUDED.error_message
  WHERE chat_messages.session_id = EXCLUDED.session_id
  RETURNING *`;

function upsertParams(sessionId: string, m: ChatMessage): unknown[] {
  return [
    m.id,
    sessionId,
    m.role,
    m.content,
    m.role === "user" ? (m.originalModel ?? m.model) : (m.model ?? m.originalModel),
    m.input_tokens ?? 0,
    m.output_tokens ?? 0,
    m.total_tokens ?? 0,
    m.user_message_id || null,
    m.contentType ?? "text",
    m.elapsed_ms ?? 0,
    m.completion_id,
    new Date(m.timestamp).toISOString(),
    m.error ? (m.error_message ?? FAILED_MESSAGE) : null,
  ];
}

// C-MSG-7: over messages without error; "latest" = greatest (timestamp, seq).
const REFRESH_STATS = `
  WITH ok AS (SELECT * FROM chat_messages WHERE session_id = $1 AND error_message IS NULL)
  UPDATE chat_sessions SET
    message_count = (SELECT count(*) FROM ok),
    total_tokens = (SELECT coalesce(sum(total_tokens), 0) FROM ok WHERE role = 'assistant'),
    last_message_timestamp = (SELECT message_timestamp FROM ok ORDER BY message_timestamp DESC, seq DESC LIMIT 1),
    last_message_preview = (SELECT left(content, 100) FROM ok ORDER BY message_timestamp DESC, seq DESC LIMIT 1),
    last_model = (SELECT model FROM ok WHERE model IS NOT NULL AND model <> ''
                  ORDER BY message_timestamp DESC, seq DESC LIMIT 1),
    updated_at = now()
  WHERE id = $1
  RETURNING *`;

/** Stores a batch (C-MSG-2..7, C-MSG-10, C-AUTH-2/3); all or nothing. */
export async function storeMessages(userId: string, req: StoreRequest) {
  return transaction(async (db) => {
    const session = await lockOrCreateSession(db, userId, req);

    const stored: MessageRow[] = [];
    for (const m of req.messages) {
      const { rows } = await db.query<MessageRow>(UPSERT, upsertParams(session.id, m));
      if (!rows[0]) {
        throw conflict(`Message ${m.id} already belongs to another conversation`, "Use a new message id");
      }
      stored.push(rows[0]);
    }

    await checkPairing(db, session.id, req.messages);
    const refreshed = await db.query(REFRESH_STATS, [session.id]);
    return {
      messages: stored.map(toItem),
      session: toSession(refreshed.rows[0]),
    };
  });
}

async function lockOrCreateSession(db: Queryable, userId: string, req: StoreRequest): Promise<Session> {
  // The session found by the INSERT's conflict may be deleted before the SELECT locks it
  // (a delete racing this sync): then the sync goes after the delete and creates it anew
  // (C-MSG-6), never a 404 for a session the caller asked to create.
  let row: SessionRow | undefined;
  for (let attempt = 0; attempt < 5 && !row; attempt++) {
    await db.query(
      `INSERT INTO chat_sessions (id, user_id, title) VALUES ($1, $2, $3) ON CONFLICT (id) DO NOTHING`,
      [req.sessionId, userId, titleFor(req)],
    );
    const { rows } = await db.query<SessionRow>("SELECT * FROM chat_sessions WHERE id = $1 FOR UPDATE", [req.sessionId]);
    row = rows[0];
  }
  if (!row || row.user_id !== userId) throw notFound(`Session ${req.sessionId} not found`);
  if (req.title && row.title !== req.title) {
    await db.query("UPDATE chat_sessions SET title = $2 WHERE id = $1", [req.sessionId, req.title]);
  }
  return toSession(row);
}

/** C-MSG-10: an answer's user_message_id must name a user message of this session. */
async function checkPairing(db: Queryable, session: string, messages: ChatMessage[]): Promise<void> {
  const wanted = [
    ...new Set(messages.filter((m) => m.role === "assistant" && m.user_message_id).map((m) => m.user_message_id!)),
  ];
  if (wanted.length === 0) return;
  const { rows } = await db.query<{ id: string }>(
    "SELECT id FROM chat_messages WHERE session_id = $1 AND role = 'user' AND id = ANY($2::text[])",
    [session, wanted],
  );
  const found = new Set(rows.map((r) => r.id));
  const missing = wanted.find((id) => !found.has(id));
  if (missing !== undefined) {
    throw unprocessable(
      `user_message_id ${missing} names no user message of this session`,
      "Store the user message first, or in the same batch",
    );
  }
}

/** GET /api/chat/messages (C-MSG-9). */
export async function readMessages(userId: string, params: URLSearchParams) {
  const id = sessionId(params.get("session_id"), "session_id");
  const sinceText = params.get("since_ts");
  let since: number | null = null;
  if (sinceText !== null) {
    since = parseTimestamp(sinceText);
    if (since === null) throw badRequest("since_ts is not an ISO-8601 timestamp");
  }
  const db = pool();
  if (!(await findSession(db, userId, id))) throw notFound(`Session ${id} not found`);
  const { rows } = await db.query<MessageRow>(
    `SELECT * FROM chat_messages WHERE session_id = $1 AND ($2::timestamptz IS NULL OR message_timestamp > $2)
     ORDER BY message_timestamp, seq`,
    [id, since === null ? null : new Date(since).toISOString()],
  );
  const messages = rows.map(toItem);
  return since === null
    ? { messages, count: messages.length }
    : { messages, count: messages.length, up_to_date: messages.length === 0 };
}
