// CONTRACT.md §3: how a declared route's path matches a request path, for the gateway (which
// refuses undeclared routes) and our runner (which serves them) alike: one matcher, so a route the
// gateway lets through is a route the runner answers. Plain code, no dependencies: the runner bundle
// includes it.
//
// The syntax is the part of Express 4's (Hay's runner) that means the same everywhere: literal text,
// `:name` (one segment), `:name?` (an optional segment), `*` (anything, slashes included). A path is
// matched in any case and with or without a trailing slash, as Express does; HEAD is served by a GET
// route. Regular-expression syntax (`:id(\d+)` in Express, `:id{\d+}` in hono) is refused: each
// router reads it differently, so such a declaration is invalid metadata.

export type RoutePattern = { ok: true; source: string; keys: string[] } | { ok: false; reason: string }

const TOKEN = /(\/)?:([A-Za-z0-9_]+)(\?)?|\*|[./]|[()[\]{}+?^$|\\]/g
const REFUSED = /[()[\]{}+?^$|\\]/

/** The RegExp source (unanchored, no trailing slash) and parameter names of a declared path. */
export function parseRoutePattern(path: string): RoutePattern {
  if (!path.startsWith('/')) return { ok: false, reason: 'must start with /' }
  const keys: string[] = []
  let wildcards = 0
  let refused: string | undefined
  const source = path.replace(TOKEN, (token, slash: string | undefined, name: string | undefined, optional: string | undefined) => {
    if (name !== undefined) {
      keys.push(name)
      const segment = `${slash ? '\\/' : ''}([^\\/]+?)`
      return optional ? `(?:${segment})?` : segment
    }
    if (token === '*') {
      keys.push(String(wildcards++))
      return '(.*)'
    }
    if (REFUSED.test(token)) refused ??= token
    return `\\${token}`
  })
  if (refused !== undefined) {
    return { ok: false, reason: `"${refused}" is pattern syntax the routers read differently; use :name, :name? or *` }
  }
  return { ok: true, source: source.endsWith('\\/') ? source.slice(0, -2) : source, keys }
}

export interface RouteMatch<T> {
  value: T
  params: Record<string, string>
}

export interface RouteTable<T> {
  /** The first route declared for this method (HEAD: or GET) whose path matches, with its parameters decoded. */
  match(method: string, path: string): RouteMatch<T> | undefined
  /** Whether match() would find a route, without extracting parameters (the gateway's check). */
  has(method: string, path: string): boolean
}

interface Compiled<T> {
  method: string
  pattern: RegExp
  keys: string[]
  value: T
}

/**
 * Compiles routes once. Declarations whose path is not a route pattern are left out (the gateway
 * refuses them as invalid metadata before it gets here; the runner shows them in /metadata only).
 */
export function createRouteTable<T>(routes: Iterable<{ method: string; path: string; value: T }>): RouteTable<T> {
  const compiled: Compiled<T>[] = []
  const sourcesByMethod = new Map<string, string[]>()
  for (const { method, path, value } of routes) {
    const pattern = parseRoutePattern(path)
    if (!pattern.ok) continue
    compiled.push({ method, pattern: anchored(pattern.source), keys: pattern.keys, value })
    const sources = sourcesByMethod.get(method)
    if (sources) sources.push(pattern.source)
    else sourcesByMethod.set(method, [pattern.source])
  }
  // One alternation per method: a single test per request however many routes were declared.
  const any = new Map([...sourcesByMethod].map(([method, sources]) => [method, anchored(`(?:${sources.join('|')})`)]))
  const test = (method: string, path: string) => any.get(method)?.test(path) === true

  return {
    match(method, path) {
      for (const route of compiled) {
        if (route.method !== method && !(method === 'HEAD' && route.method === 'GET')) continue
        const m = route.pattern.exec(path)
        if (m) return { value: route.value, params: paramsOf(route.keys, m) }
      }
      return undefined
    },
    has: (method, path) => test(method, path) || (method === 'HEAD' && test('GET', path)),
  }
}

const anchored = (source: string) => new RegExp(`^${source}\\/?$`, 'i')

function paramsOf(keys: readonly string[], m: RegExpExecArray): Record<string, string> {
  const params: Record<string, string> = {}
  keys.forEach((key, i) => {
    const raw = m[i + 1]
    if (raw !== undefined) params[key] = decodeParam(raw)
  })
  return params
}

function decodeParam(raw: string): string {
  try {
    return decodeURIComponent(raw)
  } catch {
    return raw // malformed escapes are handed over as sent
  }
}
