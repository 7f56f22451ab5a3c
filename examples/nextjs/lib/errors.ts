// The error envelope of C-ERR-1 and the codes of C-ERR-2.

export type ErrorCode =
  | "bad_request"
  | "auth_required"
  | "token_invalid"
  | "token_expired"
  | "payment_required"
  | "not_found"
  | "method_not_allowed"
  | "conflict"
  | "payload_too_large"
  | "unprocessable_entity"
  | "too_many_requests"
  | "internal_server_error"
  | "bad_gateway"
  | "service_unavailable"
  | "gateway_timeout";

export interface ErrorExtras {
  details?: string;
  retryAfter?: number;
  suggestions?: string[];
  headers?: Record<string, string>;
}

/** An error that becomes an HTTP answer; throw it anywhere in a handler. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode,
    message: string,
    readonly extras: ErrorExtras = {},
  ) {
    super(message);
    this.name = "ApiError";
  }
}

export const badRequest = (message: string, details?: string) =>
  new ApiError(400, "bad_request", message, { details });

export const notFound = (message: string) => new ApiError(404, "not_found", message);

export const conflict = (message: string, details?: string) =>
  new ApiError(409, "conflict", message, { details });

export const tooLarge = (message: string) => new ApiError(413, "payload_too_large", message);

export const unprocessable = (message: string, details?: string) =>
  new ApiError(422, "unprocessable_entity", message, { details });

export const serviceUnavailable = (message: string, details?: string) =>
  new ApiError(503, "service_unavailable", message, { details });

export function errorResponse(err: ApiError): Response {
  const { details, retryAfter, suggestions, headers } = err.extras;
  const body: Record<string, unknown> = {
    error: err.message,
    code: err.code,
    timestamp: new Date().toISOString(),
  };
  if (details !== undefined) body.details = details;
  if (retryAfter !== undefined) body.retryAfter = retryAfter;
  if (suggestions !== undefined) body.suggestions = suggestions;
  return Response.json(body, { status: err.status, headers });
}
