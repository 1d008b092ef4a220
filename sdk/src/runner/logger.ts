import type { HayLogger } from '../types.js'

/** ctx.logger: one line per entry; info/debug to stdout, warn/error to stderr, as Hay's logger. */
export function createLogger(tags: { pluginId: string; orgId: string }, debug: boolean): HayLogger {
  const prefix = `[org:${tags.orgId}][plugin:${tags.pluginId}]`
  const line = (level: string, message: string, meta: unknown) =>
    `${new Date().toISOString()} ${prefix} ${level}: ${message}${meta === undefined ? '' : ` ${formatMeta(meta)}`}\n`
  return {
    debug: (message, meta) => void (debug && process.stdout.write(line('DEBUG', message, meta))),
    info: (message, meta) => void process.stdout.write(line('INFO', message, meta)),
    warn: (message, meta) => void process.stderr.write(line('WARN', message, meta)),
    error: (message, meta) => void process.stderr.write(line('ERROR', message, meta)),
  }
}

function formatMeta(meta: unknown): string {
  if (meta instanceof Error) return JSON.stringify({ name: meta.name, message: meta.message, stack: meta.stack })
  try {
    return JSON.stringify(meta) ?? String(meta)
  } catch {
    return String(meta) // circular or BigInt: the plain rendering will do
  }
}
