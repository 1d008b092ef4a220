// Stable codes, so scripts (and tests) branch on them; the message is the one line a person reads.
export type CliErrorCode = 'USAGE' | 'CONFIG' | 'UNREACHABLE' | 'TIMEOUT' | 'UNAUTHORIZED' | 'FORBIDDEN' | 'API_ERROR' | 'BAD_RESPONSE'

export class CliError extends Error {
  override readonly name = 'CliError'
  constructor(
    readonly code: CliErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }

  /** 2 for a bad command line (nothing was tried), 1 for everything that failed while trying. */
  get exitCode(): number {
    return this.code === 'USAGE' ? 2 : 1
  }
}
