import type { Logger, LogFn } from '../core/index.js'

const LEVELS = { debug: 20, info: 30, warn: 40, error: 50 } as const
export type ConsoleLevel = keyof typeof LEVELS | 'silent'

/** JSON lines on the Workers console (which is what `wrangler tail` and Logpush read), pino-shaped. */
export function consoleLogger(level: ConsoleLevel = 'info', bindings: Record<string, unknown> = {}): Logger {
  const threshold = level === 'silent' ? Infinity : LEVELS[level]
  const at = (name: keyof typeof LEVELS): LogFn =>
    function log(objOrMsg: object | string, msg?: string) {
      if (LEVELS[name] < threshold) return
      const data = typeof objOrMsg === 'string' ? { msg: objOrMsg } : { ...serialize(objOrMsg), msg }
      console.log(JSON.stringify({ level: LEVELS[name], time: Date.now(), ...bindings, ...data }))
    } as LogFn
  return {
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => consoleLogger(level, { ...bindings, ...more }),
  }
}

function serialize(obj: object): Record<string, unknown> {
  const out: Record<string, unknown> = { ...obj }
  const err = (obj as { err?: unknown }).err
  if (err instanceof Error) out.err = { type: err.name, message: err.message, stack: err.stack }
  return out
}
