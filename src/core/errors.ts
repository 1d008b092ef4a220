import type { ContentfulStatusCode, UnofficialStatusCode } from 'hono/utils/http-status'

// Stable codes: callers and tests branch on these, never on messages.
export const ERROR_CODES = [
  'BAD_REQUEST',
  'VALIDATION_FAILED',
  'UNSUPPORTED_MEDIA_TYPE',
  'UNAUTHORIZED',
  'FORBIDDEN',
  'NOT_FOUND',
  'PLUGIN_NOT_FOUND',
  'PLUGIN_INVALID',
  'INSTANCE_NOT_FOUND',
  'INSTANCE_DISABLED',
  'ROUTE_NOT_FOUND',
  'PAYLOAD_TOO_LARGE',
  'HEADERS_TOO_LARGE',
  'REQUEST_TIMEOUT',
  'AUTH_INVALID',
  'CONFIG_INVALID',
  'CONFIG_TOO_LARGE',
  'METADATA_UNAVAILABLE',
  'WORKER_START_FAILED',
  'WORKER_START_TIMEOUT',
  'WORKER_UNAVAILABLE',
  'QUEUE_FULL',
  'ORG_QUEUE_FULL',
  'CAPACITY_EXHAUSTED',
  'UPSTREAM_ERROR',
  'UPSTREAM_TIMEOUT',
  'SHUTTING_DOWN',
  'LISTEN_FAILED',
  'RUNNER_UNREACHABLE',
  'CLIENT_CLOSED',
  'NOT_OWNER',
  'SECRETS_UNAVAILABLE',
  'SECRETS_UNREADABLE',
  'INTERNAL',
] as const
export type ErrorCode = (typeof ERROR_CODES)[number]

export const isErrorCode = (value: unknown): value is ErrorCode => (ERROR_CODES as readonly unknown[]).includes(value)

export interface GatewayErrorOptions extends ErrorOptions {
  /** Seconds for a Retry-After header on 429/503 answers. */
  retryAfterSeconds?: number
  /** Machine-readable detail for the client, e.g. zod issues. Never secrets. */
  details?: unknown
  /** Further headers of the answer (e.g. a cluster's not-the-owner mark). */
  headers?: Readonly<Record<string, string>>
}

export class GatewayError extends Error {
  override readonly name = 'GatewayError'
  readonly retryAfterSeconds: number | undefined
  readonly details: unknown
  readonly headers: Readonly<Record<string, string>> | undefined

  constructor(
    readonly code: ErrorCode,
    readonly status: ContentfulStatusCode,
    message: string,
    options?: GatewayErrorOptions,
  ) {
    super(message, options)
    this.retryAfterSeconds = options?.retryAfterSeconds
    this.details = options?.details
    this.headers = options?.headers
  }
}

export const isGatewayError = (err: unknown): err is GatewayError => err instanceof GatewayError

/** Text of an unknown thrown value, for lastError columns and logs. */
export const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err))

/**
 * The client went away before its answer (nginx's 499). Nobody reads this status: it is for logs and
 * metrics, which must not count a client's hang-up as a gateway failure.
 */
export const clientClosed = () =>
  new GatewayError('CLIENT_CLOSED', 499 as UnofficialStatusCode, 'the client closed the connection before the answer')

/** A body over max, refused before it is read: the connection ends after the answer, not to be taken for the next request. */
export const bodyTooLarge = (max: number) =>
  new GatewayError('PAYLOAD_TOO_LARGE', 413, `request body exceeds ${max} bytes`, { headers: { connection: 'close' } })
