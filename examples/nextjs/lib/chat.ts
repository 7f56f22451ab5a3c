// POST /api/chat and /api/chat/stream share this: the request (C-CHAT-1), the
// message the answer belongs to (C-CHAT-2), what goes to the provider
// (C-CHAT-3) and the answer's metadata (C-CHAT-4).

import { badRequest, tooLarge, unprocessable } from "./errors";
import type { ProviderMessage, Usage } from "./provider";
import {
  type ChatMessage,
  type Json,
  chronological,
  codePoints,
  optionalString,
  parseChatMessage,
  requiredString,
  storable,
} from "./validation";

export const MAX_MESSAGE_CHARS = 20_000;

export interface ChatRequest {
  message: string;
  model: string;
  history: ChatMessage[]; // [] when the client sent none
  currentMessageId: string | null;
}

export function parseChatRequest(body: Json): ChatRequest {
  // Not stored here, but the client stores it next: refuse what Postgres cannot hold.
  const message = storable(requiredString(body, "message"), "message");
  const length = codePoints(message.trim());
  if (length === 0) throw badRequest("message must not be empty");
  if (length > MAX_MESSAGE_CHARS) {
    throw tooLarge(`message is too long: ${length} characters, at most ${MAX_MESSAGE_CHARS}`);
  }
  const model = requiredString(body, "model");
  if (model.trim() === "") throw badRequest("model must not be empty");
  optionalString(body, "sessionId");
  const currentMessageId = optionalString(body, "current_message_id");

  let history: ChatMessage[] = [];
  if (body.messages !== undefined && body.messages !== null) {
    if (!Array.isArray(body.messages)) throw badRequest("messages must be an array");
    history = body.messages.map((m, i) => parseChatMessage(m, `messages[${i}]`));
  }
  return { message, model, history, currentMessageId };
}

/** C-CHAT-2: the id of the user message this completion answers. */
export function triggerId(req: ChatRequest): string | null {
  const users = req.history.filter((m) => m.role === "user");
  if (req.currentMessageId !== null) {
    if (req.history.length > 0 && !users.some((m) => m.id === req.currentMessageId)) {
      throw unprocessable(
        "current_message_id names no user message in messages",
        `current_message_id ${JSON.stringify(req.currentMessageId)}`,
      );
    }
    return req.currentMessageId;
  }
  if (req.history.length === 0) return null;
  const text = req.message.trim();
  const matches = chronological(users).filter((m) => m.content.trim() === text);
  const last = matches.at(-1);
  if (!last) throw unprocessable("messages holds no user message with the text of message");
  return last.id;
}

/** C-CHAT-3: the conversation up to and including the trigger, failed ones left out. */
export function providerMessages(req: ChatRequest, trigger: string | null): ProviderMessage[] {
  if (req.history.length === 0) return [{ role: "user", content: req.message }];
  const ordered = chronological(req.history);
  const end = ordered.findIndex((m) => m.role === "user" && m.id === trigger);
  const upTo = end >= 0 ? ordered.slice(0, end + 1) : ordered;
  return upTo
    .filter((m) => !m.error || m.id === trigger)
    .map((m) => ({ role: m.role, content: m.content }));
}

const MARKDOWN = /(^#{1,6}\s)|(\*\*[^*]+\*\*)|(```)|(^\s*[-*+]\s+\S)|(^\s*\d+\.\s+\S)|(\[[^\]]+\]\([^)]+\))|(^>\s)/m;

export function contentTypeOf(text: string): "markdown" | "text" {
  return MARKDOWN.test(text) ? "markdown" : "text";
}

export interface AnswerMeta {
  response: string;
  usage: Usage;
  request_id: string | null;
  timestamp: string;
  elapsed_ms: number;
  contentType: "markdown" | "text";
  id: string | null;
  model: string;
}

export function answerMeta(
  req: ChatRequest,
  trigger: string | null,
  started: number,
  answer: { content: string; usage: Usage; id: string | null; model: string | null },
): AnswerMeta {
  return {
    response: answer.content,
    usage: answer.usage,
    request_id: trigger,
    timestamp: new Date().toISOString(),
    elapsed_ms: Math.round(performance.now() - started),
    contentType: contentTypeOf(answer.content),
    id: answer.id,
    model: answer.model ?? req.model,
  };
}
