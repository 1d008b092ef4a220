import { z } from 'zod'

// The edge program's only reader of its bindings (wrangler.toml [vars] / secrets): the Worker's
// counterpart of src/config.ts.

// A base URL is joined with a request's path: a query, a fragment or credentials in it would end up
// before that path (`…/?pool=1/orgs/…`), or in every request.
const isBaseUrl = (s: string): boolean => {
  if (!URL.canParse(s)) return false
  const url = new URL(s)
  return /^https?:$/.test(url.protocol) && !s.includes('?') && !s.includes('#') && url.username === '' && url.password === ''
}

const BaseUrl = z
  .string()
  .trim()
  .refine(isBaseUrl, 'must be an http(s) base URL, without a query, a fragment or credentials')
  .transform((s) => s.replace(/\/+$/, ''))

const EdgeBindings = z.object({
  GATEWAY_ORIGINS: z
    .string({ error: 'GATEWAY_ORIGINS is not set' })
    .transform((s) => s.split(/[\s,]+/).filter(Boolean))
    .pipe(z.array(BaseUrl).min(1, 'GATEWAY_ORIGINS must list at least one Node gateway base URL')),
})

export type EdgeBindings = z.input<typeof EdgeBindings>

export interface EdgeConfig {
  /** Node gateway base URLs, without a trailing slash, in the order given. */
  origins: readonly string[]
}

export type EdgeConfigResult = { ok: true; config: EdgeConfig } | { ok: false; error: string }

/** Parses the bindings; a bad value is a result, so the Worker answers a clear 500 instead of throwing at import. */
export function parseEdgeBindings(env: unknown): EdgeConfigResult {
  const parsed = EdgeBindings.safeParse(env ?? {})
  if (!parsed.success) return { ok: false, error: parsed.error.issues.map((i) => `${i.path.join('.') || 'env'}: ${i.message}`).join('; ') }
  return { ok: true, config: Object.freeze({ origins: Object.freeze(parsed.data.GATEWAY_ORIGINS) }) }
}
