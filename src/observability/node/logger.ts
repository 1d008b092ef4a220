import pino, { type DestinationStream, type Level } from 'pino'

/**
 * Never logged in clear (STYLE.md §8): authorization and cookie headers, tokens, org config (it holds
 * secrets), auth credentials and worker environments. Covers the value at the top level and one object
 * down (`{ req: { headers } }`, `{ instance: { config } }`), which is how our log calls nest data.
 */
export const REDACT_PATHS: readonly string[] = [
  'authorization',
  'cookie',
  'headers.authorization',
  'headers.cookie',
  'headers["x-signature"]',
  '*.headers.authorization',
  '*.headers.cookie',
  'token',
  '*.token',
  'adminToken',
  '*.adminToken',
  'config',
  '*.config',
  'credentials',
  '*.credentials',
  'authState',
  '*.authState',
  'env',
  '*.env',
  'secrets',
  '*.secrets',
  'secretKey',
  '*.secretKey',
  'database.authToken',
]

export interface LoggerOptions {
  level: Level | 'silent'
  /** Where lines go; stdout by default. Tests pass an in-memory stream. */
  destination?: DestinationStream
}

/** The Node gateway's logger: JSON lines, secrets redacted, level from config (LOG_LEVEL). */
export function createLogger(opts: LoggerOptions) {
  const options = {
    level: opts.level,
    base: { service: 'plugin-gateway' },
    redact: { paths: [...REDACT_PATHS], censor: '[redacted]' },
  }
  // Written synchronously: pino's default asynchronous stdout flushes itself at exit in a loop that
  // never ends once stdout is a pipe nobody reads (EPIPE), and the gateway hung. A synchronous write
  // that meets EPIPE makes pino stop logging instead.
  return pino(options, opts.destination ?? pino.destination({ dest: 1, sync: true }))
}
