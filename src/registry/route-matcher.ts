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
 */
export function compileRoutes(routes: readonly RouteDecl[]): RouteMatcher {
  const router = new SmartRouter<true>({ routers: [new RegExpRouter(), new TrieRouter()] })
  for (const r of routes) router.add(r.method, r.path, true)
  const has = (method: string, path: string) => router.match(method, path)[0].length > 0
  return {
    matches: (method, path) => has(method, path) || (method === 'HEAD' && has('GET', path)),
  }
}
