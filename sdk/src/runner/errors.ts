// A stable code for every way the runner can fail; the gateway and tests branch on the exit code and
// the code, never on the message.

export type RunnerErrorCode =
  | 'BAD_ARGS'
  | 'MANIFEST_INVALID'
  | 'ENTRY_NOT_FOUND'
  | 'ENTRY_LOAD_FAILED'
  | 'NO_DEFAULT_EXPORT'
  | 'PLUGIN_INVALID'
  | 'INIT_FAILED'
  | 'ORG_ENV_INVALID'
  | 'START_FAILED'
  | 'NEVER_SETTLED'
  | 'LISTEN_FAILED'

export class RunnerError extends Error {
  override readonly name = 'RunnerError'
  constructor(
    readonly code: RunnerErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options)
  }
}

/** 1: the plugin could not be initialised (bad input, a hook threw); 2: it could not be served. */
export const exitCodeFor = (code: RunnerErrorCode): 1 | 2 => (code === 'LISTEN_FAILED' ? 2 : 1)
