import { RegExpRouter } from 'hono/router/reg-exp-router'
import { SmartRouter } from 'hono/router/smart-router'
import { TrieRouter } from 'hono/router/trie-router'
import type { RouteDecl } from '../contract/index.js'

export interface RouteMatcher {
  /** True when the plugin declared a route for this method and path (HEAD falls back to GET). */
  matches(method: string, path: string): boolean
}

/**
 * Compiles a plugin's declared routes once per metadata version. Hono's default router: one
 * RegExp over all routes (~4× faster per match than the trie, and no allocation per route), and
 * the trie for the patterns a RegExp cannot express; both match a path the same way.
 *
 * The runner matches as Express does, case-insensitively and with an optional trailing slash, so a
 * path is compared in that same normal form here: `/Items/1/` reaches a plugin that declared `/items/:id`.
 */
export function compileRoutes(routes: readonly RouteDecl[]): RouteMatcher {
  const router = new SmartRouter<true>({ routers: [new RegExpRouter(), new TrieRouter()] })
  for (const r of routes) router.add(r.method, normalPath(r.path), true)
  const has = (method: string, path: string) => router.match(method, path)[0].length > 0
  return {
    matches(method, path) {
      const normal = normalPath(path)
      return has(method, normal) || (method === 'HEAD' && has('GET', normal))
    },
  }
}

/** Lower case, without a trailing slash (the root stays `/`). */
function normalPath(path: string): string {
  const lower = path.toLowerCase()
  return lower.length > 1 && lower.endsWith('/') ? lower.slice(0, -1) : lower
}
