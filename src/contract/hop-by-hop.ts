// RFC 9110 §7.6.1: connection-specific fields never cross a proxy. `host` is re-set for the
// upstream's origin (the original travels as x-forwarded-host), and `expect` is not relayed.
export const HOP_BY_HOP_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'expect',
  'host',
])

const NONE: ReadonlySet<string> = new Set()
const KEEP_ALIVE: ReadonlySet<string> = new Set(['keep-alive'])

/** The lower-cased field names a Connection header lists, which are hop-by-hop as well. */
export function connectionTokens(value: string | readonly string[] | null | undefined): ReadonlySet<string> {
  if (!value) return NONE // the common case allocates nothing
  if (value === 'keep-alive' || value === 'Keep-Alive') return KEEP_ALIVE // the usual one neither
  const joined = typeof value === 'string' ? value : value.join(',')
  return new Set(
    joined
      .split(',')
      .map((t) => t.trim().toLowerCase())
      .filter(Boolean),
  )
}
