import { createLogger } from '../../src/observability/node/index.js'

/** The gateway's real logger (pino, JSON lines, redaction) writing into memory. */
export function capturedLogger(level: 'debug' | 'info' | 'warn' = 'debug') {
  const lines: string[] = []
  const log = createLogger({ level, destination: { write: (s: string) => void lines.push(s) } })
  const records = () => lines.map((l) => JSON.parse(l) as Record<string, unknown>)
  return { log, lines, records }
}
