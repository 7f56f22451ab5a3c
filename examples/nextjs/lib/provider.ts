// The OpenRouter client: one call per attempt with PROVIDER_TIMEOUT_MS each,
// the retry rules of C-CHAT-3, the error mapping of C-CHAT-5, and the SSE
// stream of C-STREAM-2/3.

import { ApiError } from "./errors";

export interface ProviderMessage {
  role: string;
  content: string;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface Completion {
  content: string;
  usage: Usage;
  id: string | null;
  model: string | null;
}

const MAX_RETRIES = 2;
const DEFAULT_RETRY_AFTER = 60;

function settings() {
  const timeout = Number(process.env.PROVIDER_TIMEOUT_MS);
  return {
    url: `${(process.env.OPENROUTER_BASE_URL ?? "https://openrouter.ai/api/v1").replace(/\/+$/, "")}/chat/completions`,
    apiKey: process.env.OPENROUTER_API_KEY ?? "",
    timeoutMs: Number.isFinite(timeout) && timeout > 0 ? timeout : 30_000,
  };
}

/** Seconds from a Retry-After header: "120" or an HTTP date, rounded up. */
export function parseRetryAfter(value: string | null): number | undefined {
  const text = value?.trim();
  if (!text) return undefined;
  if (/^\d+(\.\d+)?$/.test(text)) return Math.ceil(Number(text));
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, Math.ceil((date - Date.now()) / 1000));
}

/** C-CHAT-5: what the client gets for a provider status (HTTP or error.code). */
export function providerFailure(status: number, message: string | undefined, retryAfterHeader?: string | null): ApiError {
  const details = message || undefined;
  if (status === 429 || status === 503) {
    const retryAfter = parseRetryAfter(retryAfterHeader ?? null) ?? DEFAULT_RETRY_AFTER;
    const headers = { "Retry-After": String(retryAfter) };
    return status === 429
      ? new ApiError(429, "too_many_requests", "The model is rate-limited right now", {
          details,
          retryAfter,
          headers,
          suggestions: [`Try again in ${retryAfter} seconds`, "Switch to a different model"],
        })
      : new ApiError(503, "service_unavailable", "The model provider is unavailable right now", {
          details,
          retryAfter,
          headers,
          suggestions: [`Try again in ${retryAfter} seconds`],
        });
  }
  if (status === 402) return new ApiError(402, "payment_required", "The model provider needs payment", { details });
  if (status === 400) return new ApiError(400, "bad_request", "The model provider refused the request", { details });
  return badGateway(`The model provider failed (${status})`, details);
}

export const badGateway = (message: string, details?: string) =>
  new ApiError(502, "bad_gateway", message, { details });

const gatewayTimeout = () =>
  new ApiError(504, "gateway_timeout", "The model provider did not answer in time");

function errorMessage(body: unknown): string | undefined {
  const error = (body as { error?: unknown })?.error;
  if (typeof error === "string") return error;
  const message = (error as { message?: unknown })?.message;
  return typeof message === "string" ? message : undefined;
}

function errorCode(body: unknown): number | undefined {
  const code = Number((body as { error?: { code?: unknown } })?.error?.code);
  return Number.isInteger(code) ? code : undefined;
}

function count(value: unknown): number {
  return typeof value === "number" && Number.isFinite(value) && value >= 0 ? Math.trunc(value) : 0;
}

function readUsage(usage: unknown): Usage {
  const u = (usage ?? {}) as Record<string, unknown>;
  return {
    prompt_tokens: count(u.prompt_tokens),
    completion_tokens: count(u.completion_tokens),
    total_tokens: count(u.total_tokens),
  };
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

const retryable = (status: number) => status >= 500 && status !== 503;

/**
 * Sends one request, retrying connection errors and 5xx (not 503) up to
 * twice. `onResponse` reads the answer within the same attempt's deadline.
 */
async function callProvider<T>(
  body: object,
  onResponse: (res: Response, deadline: Deadline) => Promise<T>,
  signal?: AbortSignal,
): Promise<T> {
  const { url, apiKey, timeoutMs } = settings();
  let lastFailure: ApiError = badGateway("The model provider could not be reached");
  for (let attempt = 0; attempt <= MAX_RETRIES; attempt++) {
    const deadline = new Deadline(timeoutMs, signal);
    let res: Response;
    try {
      res = await fetch(url, {
        method: "POST",
        headers: { Authorization: `Bearer ${apiKey}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
        signal: deadline.signal,
        cache: "no-store",
      });
    } catch (err) {
      deadline.clear();
      if (deadline.timedOut) throw gatewayTimeout();
      if (signal?.aborted) throw err;
      lastFailure = badGateway("The model provider could not be reached", (err as Error).cause?.toString());
      continue;
    }
    if (res.status !== 200 && retryable(res.status) && attempt < MAX_RETRIES) {
      await res.body?.cancel().catch(() => undefined);
      deadline.clear();
      continue;
    }
    try {
      return await onResponse(res, deadline); // a stream keeps its deadline running
    } catch (err) {
      deadline.clear();
      if (deadline.timedOut) throw gatewayTimeout();
      if (err instanceof ApiError || signal?.aborted) throw err;
      // the connection broke while reading the answer: a connection error
      lastFailure = badGateway("The model provider's connection broke", (err as Error).cause?.toString());
    }
  }
  throw lastFailure;
}

/** An AbortController that fires after timeoutMs; restartable per token. */
export class Deadline {
  private readonly controller = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  timedOut = false;
  readonly signal: AbortSignal;

  constructor(private readonly timeoutMs: number, outer?: AbortSignal) {
    this.signal = outer ? AbortSignal.any([this.controller.signal, outer]) : this.controller.signal;
    this.restart();
  }

  restart(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => {
      this.timedOut = true;
      this.controller.abort(new Error("provider timeout"));
    }, this.timeoutMs);
  }

  clear(): void {
    clearTimeout(this.timer);
  }

  abort(): void {
    this.clear();
    this.controller.abort();
  }
}

async function failureOf(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => "");
  return providerFailure(res.status, errorMessage(parseJson(text)), res.headers.get("retry-after"));
}

/** POST /chat/completions without streaming (C-CHAT-3..5). */
export async function complete(model: string, messages: ProviderMessage[]): Promise<Completion> {
  return callProvider({ model, messages }, async (res, deadline) => {
    if (res.status !== 200) throw await failureOf(res);
    const text = await res.text();
    deadline.clear();
    const body = parseJson(text);
    if (typeof body !== "object" || body === null) throw badGateway("The model provider sent a malformed answer");
    const answer = body as Record<string, unknown>;
    if (answer.error) throw badGateway("The model provider reported an error", errorMessage(answer));
    const choices = answer.choices;
    if (!Array.isArray(choices) || choices.length === 0) throw badGateway("The model provider sent no choices");
    const content = (choices[0] as { message?: { content?: unknown } })?.message?.content;
    if (typeof content !== "string" || content.trim() === "") {
      throw badGateway("The model provider sent an empty answer");
    }
    return {
      content,
      usage: readUsage(answer.usage),
      id: typeof answer.id === "string" ? answer.id : null,
      model: typeof answer.model === "string" && answer.model ? answer.model : null,
    };
  });
}

// --- streaming ------------------------------------------------------------

export type StreamEvent =
  | { kind: "token"; text: string }
  | { kind: "end" } // [DONE], or EOF after a finish_reason
  | { kind: "error"; failure: ApiError }; // error chunk, cut, or gap

export interface ProviderStream {
  /** The next token, the end, or the failure that ends the stream. */
  next(): Promise<StreamEvent>;
  usage: Usage;
  id: string | null;
  model: string | null;
  close(): void;
}

/** Splits an SSE byte stream into the payloads of its `data:` fields. */
class SseReader {
  private buffer = "";
  private data: string[] = [];
  private readonly decoder = new TextDecoder();
  private readonly pending: string[] = [];

  constructor(private readonly reader: ReadableStreamDefaultReader<Uint8Array>) {}

  /** The next event's data, or null at the end of the stream. */
  async next(): Promise<string | null> {
    for (;;) {
      const ready = this.pending.shift();
      if (ready !== undefined) return ready;
      const { done, value } = await this.reader.read();
      if (done) {
        this.feed(this.decoder.decode() + "\n\n");
        const last = this.pending.shift();
        return last === undefined ? null : last;
      }
      this.feed(this.decoder.decode(value, { stream: true }));
    }
  }

  private feed(text: string): void {
    this.buffer += text;
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      if (line === "") {
        if (this.data.length) this.pending.push(this.data.join("\n"));
        this.data = [];
      } else if (line.startsWith(":")) {
        // a comment such as ": OPENROUTER PROCESSING": not a token
      } else if (line.startsWith("data:")) {
        this.data.push(line.slice(line.startsWith("data: ") ? 6 : 5));
      }
    }
  }
}

/**
 * Opens a streamed completion. Resolves once the provider answered 200 (the
 * headers within the timeout); a failure before that throws ApiError.
 */
export async function openStream(model: string, messages: ProviderMessage[], signal?: AbortSignal): Promise<ProviderStream> {
  return callProvider(
    { model, messages, stream: true },
    async (res, deadline) => {
      if (res.status !== 200 || !res.body) throw await failureOf(res);
      deadline.restart(); // the first token gets its own PROVIDER_TIMEOUT_MS
      return providerStream(new SseReader(res.body.getReader()), deadline);
    },
    signal,
  );
}

function providerStream(sse: SseReader, deadline: Deadline): ProviderStream {
  let finishReason: string | null = null;
  let finished = false;
  const stream: ProviderStream = {
    usage: readUsage(undefined),
    id: null,
    model: null,
    close: () => deadline.abort(),
    async next(): Promise<StreamEvent> {
      if (finished) return { kind: "end" };
      for (;;) {
        let data: string | null;
        try {
          data = await sse.next();
        } catch {
          deadline.clear();
          return deadline.timedOut
            ? { kind: "error", failure: gatewayTimeout() }
            : { kind: "error", failure: badGateway("The model provider's stream was cut") };
        }
        if (data === null) {
          deadline.clear();
          finished = true;
          if (finishReason !== null && finishReason !== "error") return { kind: "end" };
          return { kind: "error", failure: badGateway("The model provider's stream ended early") };
        }
        if (data.trim() === "[DONE]") {
          deadline.abort();
          finished = true;
          return { kind: "end" };
        }
        const chunk = parseJson(data) as Record<string, unknown> | undefined;
        if (typeof chunk !== "object" || chunk === null) {
          deadline.abort();
          return { kind: "error", failure: badGateway("The model provider sent a malformed stream chunk") };
        }
        if (typeof chunk.id === "string") stream.id = chunk.id;
        if (typeof chunk.model === "string" && chunk.model) stream.model = chunk.model;
        if (chunk.usage) stream.usage = readUsage(chunk.usage);
        if (chunk.error) {
          deadline.abort();
          finished = true;
          const failure = providerFailure(errorCode(chunk) ?? 502, errorMessage(chunk));
          return { kind: "error", failure };
        }
        const choice = (Array.isArray(chunk.choices) ? chunk.choices[0] : undefined) as
          | { delta?: { content?: unknown }; finish_reason?: unknown }
          | undefined;
        if (typeof choice?.finish_reason === "string") finishReason = choice.finish_reason;
        const text = choice?.delta?.content;
        if (typeof text === "string" && text !== "") {
          deadline.restart(); // the gap to the next token starts now
          return { kind: "token", text };
        }
        if (finishReason === "error") {
          deadline.abort();
          finished = true;
          return { kind: "error", failure: badGateway("The model provider failed mid-stream") };
        }
      }
    },
  };
  return stream;
}
