// Errors as ai-chatbot answers them: `{code: "<type>:<surface>", message}`
// with the status of the type.

const STATUS = {
  bad_request: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  rate_limit: 429,
  offline: 503,
} as const;

export type ErrorType = keyof typeof STATUS;

export class ChatError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(code: `${ErrorType}:${string}`, message: string) {
    super(message);
    this.code = code;
    this.status = STATUS[code.split(":")[0] as ErrorType];
  }

  toResponse(): Response {
    return Response.json({ code: this.code, message: this.message }, { status: this.status });
  }
}

export const badRequest = (message: string) => new ChatError("bad_request:api", message);
export const unauthorized = () =>
  new ChatError("unauthorized:chat", "You need to sign in before continuing.");
export const forbidden = () =>
  new ChatError("forbidden:chat", "This chat belongs to another user.");
export const notFound = () => new ChatError("not_found:chat", "The chat was not found.");

/** A route body: ChatErrors become their answer, anything else a 503 (logged). */
export async function answer(fn: () => Promise<Response>): Promise<Response> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof ChatError) return err.toResponse();
    console.error("unhandled error:", err);
    return new ChatError("offline:chat", "Something went wrong. Please try again later.").toResponse();
  }
}
