// The pino subset we use; the Node entry passes a pino logger, tests pass silentLogger.
export interface LogFn {
  (obj: object, msg?: string): void
  (msg: string): void
}

export interface Logger {
  debug: LogFn
  info: LogFn
  warn: LogFn
  error: LogFn
  child(bindings: Record<string, unknown>): Logger
  /** pino's: false when lines at this level are dropped anyway. Absent: assume they are written. */
  isLevelEnabled?(level: 'debug'): boolean
}

const noop: LogFn = () => {}

export const silentLogger: Logger = {
  debug: noop,
  info: noop,
  warn: noop,
  error: noop,
  child: () => silentLogger,
  isLevelEnabled: () => false,
}
