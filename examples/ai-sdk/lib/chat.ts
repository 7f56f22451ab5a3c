// One chat turn, the way AI SDK apps persist it (ai-chatbot's POST /api/chat):
// the user message is stored before the provider call, the history goes to
// streamText, the answer streams back as the UI message stream, and the
// assistant message is stored when the stream ends. A new chat is named by a
// concurrent non-streaming side call (generateText) announced as a
// `data-chat-title` part.
//
// Each `mutant(...)` branch is one switchable bug (CHAT_MUTANT, see
// mutants.json); without CHAT_MUTANT none is taken.

import { randomUUID } from "node:crypto";
import {
  consumeStream,
  convertToModelMessages,
  createUIMessageStream,
  createUIMessageStreamResponse,
  generateText,
  stepCountIs,
  streamText,
  tool,
  type UIMessage,
  type UIMessageChunk,
} from "ai";
import { z } from "zod";
import { config, mutant } from "./config";
import * as db from "./db";
import { badRequest, ChatError, forbidden } from "./errors";
import { model, ProviderTimeout } from "./provider";

const SYSTEM_PROMPT = "You are a helpful assistant. Answer briefly.";
const MAX_STEPS = 3; // a tool call, its result, the answer

// One tool, as ai-chatbot has getWeather: the chat call carries `tools` and
// `tool_choice: "auto"` like theirs, and a scripted tool call runs end to end.
// Deterministic: the answer depends on the city only.
const tools = {
  getWeather: tool({
    description: "The current weather in a city.",
    inputSchema: z.object({ city: z.string().min(1).max(100) }),
    execute: async ({ city }) => ({ city, temperature: 10 + (city.length % 15), unit: "C" }),
  }),
};
const TITLE_PROMPT =
  "Write a short title (at most 80 characters, no quotes) for a chat that starts with the user's message.";
const MAX_TITLE = 80;

const textPart = z.object({ type: z.literal("text"), text: z.string().min(1).max(20_000) });

export const postBody = z.object({
  id: z.string().uuid(),
  message: z.object({
    id: z.string().uuid(),
    role: z.literal("user"),
    parts: z.array(textPart).min(1),
  }),
  selectedChatModel: z.string().min(1).max(200),
  selectedVisibilityType: z.enum(["public", "private"]).default("private"),
});

export type PostBody = z.infer<typeof postBody>;

/** What the client is told when the answer fails mid-stream (its `error` part). */
function errorText(error: unknown): string {
  if (error instanceof ProviderTimeout) return "The model did not answer in time.";
  return "Oops, an error occurred!";
}

function textOf(parts: ReadonlyArray<{ type: string; text?: string }>): string {
  return parts.map((p) => (p.type === "text" ? (p.text ?? "") : "")).join("");
}

/** The stored answer holds something the model said (not only step markers). */
function hasContent(parts: UIMessage["parts"]): boolean {
  return parts.some((p) => (p.type === "text" ? p.text.trim() !== "" : p.type.startsWith("tool-")));
}

/**
 * The error of an OpenRouter error chunk (`{error: {code, message}, choices:
 * [{finish_reason: "error"}]}`), or null. @ai-sdk/openai-compatible parses
 * such a chunk as an ordinary one and ends the answer with finishReason
 * "unknown": without this the cut answer would pass for a whole one.
 */
function providerErrorIn(raw: unknown): unknown {
  const error = (raw as { error?: unknown } | null)?.error;
  return error && typeof error === "object" ? error : null;
}

/** After a provider error chunk: no text-end/finish, an `error` part instead. */
function endWithErrorIfProviderFailed(
  error: () => unknown,
  fail: (error: unknown) => string,
): TransformStream<UIMessageChunk, UIMessageChunk> {
  return new TransformStream({
    transform(chunk, controller) {
      const failure = error();
      if (failure === null) return controller.enqueue(chunk);
      if (chunk.type === "finish") {
        const message = (failure as { message?: unknown }).message;
        controller.enqueue({ type: "error", errorText: fail(new Error(String(message ?? "provider error"))) });
      } else if (chunk.type !== "text-end" && chunk.type !== "finish-step") {
        controller.enqueue(chunk);
      }
    },
  });
}

async function title(message: PostBody["message"]): Promise<string | null> {
  const c = config();
  try {
    const { text } = await generateText({
      model: model(c.titleModel),
      system: TITLE_PROMPT,
      prompt: textOf(message.parts),
      maxRetries: c.maxRetries,
    });
    const cleaned = text.trim().replace(/^["']+|["']+$/g, "").slice(0, MAX_TITLE);
    return cleaned || null;
  } catch (err) {
    console.error("title side call failed:", err instanceof Error ? err.message : err);
    return null;
  }
}

const SOMETHING_WENT_WRONG = () =>
  // what ai-chatbot answers for a failed query (its "database" surface hides the cause)
  Response.json({ code: "", message: "Something went wrong. Please try again later." }, { status: 400 });

export async function postChat(body: PostBody, userId: string): Promise<Response> {
  const { id: chatId, message, selectedChatModel } = body;

  // -- the chat: the caller's own, or a new one --------------------------------
  let isNew = false;
  let chat = await db.getChat(chatId);
  if (!chat) {
    isNew = await db.createChat({
      id: chatId,
      title: "New chat",
      userId,
      visibility: body.selectedVisibilityType,
    });
    chat = await db.getChat(chatId);
    if (!chat) throw new ChatError("offline:chat", "The chat could not be created.");
  }
  if (chat.userId !== userId && !mutant("other-user-chat")) throw forbidden();

  // -- the user message, stored before the provider is called ------------------
  if (mutant("duplicate-key-resend")) {
    try {
      await db.insertMessage(chatId, message.id, "user", message.parts);
    } catch (err) {
      if (db.sqlState(err) === "23505") return SOMETHING_WENT_WRONG();
      throw err;
    }
  }
  let resent = false; // the message was stored before: this turn answers it anew
  if (!mutant("duplicate-key-resend") && !mutant("lost-user-message")) {
    const saved = await db.saveUserMessage(chatId, message.id, message.parts);
    if (saved === "other-chat") throw badRequest("This message id belongs to another chat.");
    resent = saved === "resent";
  }

  // -- the context: the stored conversation (the new message included) --------
  const stored = await db.getMessages(chatId);
  const history: UIMessage[] = stored.map((row) => ({
    id: row.id,
    role: row.role,
    parts: row.parts as UIMessage["parts"],
  }));
  if (mutant("lost-user-message")) history.push({ id: message.id, role: "user", parts: message.parts });
  const modelMessages = convertToModelMessages(history);

  const titlePromise = isNew ? title(message) : null;
  // Set by every path an error reaches the client by: an error chunk of the
  // model's stream, or an exception out of it (a cut connection).
  let failed = false;
  let midStreamError: unknown = null;
  const fail = (error: unknown): string => {
    failed = true;
    console.error("chat call failed:", error instanceof Error ? error.message : error);
    return errorText(error);
  };

  const stream = createUIMessageStream<UIMessage>({
    execute: async ({ writer }) => {
      const result = streamText({
        model: model(selectedChatModel),
        system: SYSTEM_PROMPT,
        messages: modelMessages,
        tools,
        stopWhen: stepCountIs(MAX_STEPS),
        maxRetries: config().maxRetries,
        onError: () => undefined, // reported by fail() when it reaches the client
        includeRawChunks: true,
        onChunk: ({ chunk }) => {
          if (chunk.type === "raw") midStreamError ??= providerErrorIn(chunk.rawValue);
        },
      });
      const answerStream = result
        .toUIMessageStream({ onError: fail })
        .pipeThrough(endWithErrorIfProviderFailed(() => midStreamError, fail));
      const announceTitle = async () => {
        const text = titlePromise && (await titlePromise);
        if (!text) return;
        await db.setChatTitle(chatId, text);
        // transient: the client sees it, the stored message does not hold it
        writer.write({ type: "data-chat-title", data: text, transient: !mutant("title-in-context") });
      };
      if (mutant("title-in-context")) {
        // stored first, before the answer's step-start (as ai-chatbot stores it when
        // the title comes back first): the next turn's context gets an empty
        // assistant message out of it
        await announceTitle();
        writer.merge(answerStream);
      } else {
        writer.merge(answerStream);
        await announceTitle();
      }
    },
    generateId: randomUUID,
    onError: fail,
    onFinish: async ({ responseMessage }) => {
      const keep = hasContent(responseMessage.parts) && !failed;
      const buggyKeep = failed && (mutant("empty-assistant-row") || mutant("cut-stream-stored-as-done"));
      if (mutant("lost-user-message") && keep) {
        await db.saveUserMessage(chatId, message.id, message.parts);
      }
      if (keep || buggyKeep) {
        await db.saveAssistantMessage(chatId, message.id, responseMessage.id, responseMessage.parts, resent);
      }
    },
  });

  return createUIMessageStreamResponse({
    stream,
    // The client may go away mid-answer: the answer is still read to its end
    // and stored whole (without this, a cut stores the part sent so far).
    consumeSseStream: mutant("cut-stream-stored-as-done") ? undefined : consumeStream,
  });
}
