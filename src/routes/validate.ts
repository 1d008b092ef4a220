import type { Context } from 'hono'
import type { z } from 'zod'
import { GatewayError } from '../core/index.js'

const issuesOf = (error: z.ZodError) => error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))

// application/json, or a structured +json type. Requiring it keeps a browser's cross-site "simple"
// request (text/plain, sent without a CORS preflight) from ever being read as an API call.
const JSON_TYPE = /^application\/([\w.+-]+\+)?json\s*(;|$)/i

/**
 * Parses and validates a JSON body: another content type is a 415, malformed JSON and schema
 * violations are 400s listing the issues.
 */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  if (!JSON_TYPE.test(c.req.header('content-type') ?? '')) {
    throw new GatewayError('UNSUPPORTED_MEDIA_TYPE', 415, 'request body must be sent as content-type: application/json')
  }
  let raw: unknown
  try {
    raw = await c.req.json()
  } catch {
    throw new GatewayError('BAD_REQUEST', 400, 'request body must be valid JSON')
  }
  const odd = oddShape(raw)
  if (odd !== null) throw new GatewayError('VALIDATION_FAILED', 400, odd)
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    throw new GatewayError('VALIDATION_FAILED', 400, 'request body is invalid', { details: issuesOf(parsed.error) })
  }
  return parsed.data
}

// Deeper than any config needs; what serializes the value later (sealing, a worker's env) recurses.
const MAX_JSON_DEPTH = 64

/**
 * Why parsed JSON cannot be taken as given, or null: nested past MAX_JSON_DEPTH, or with a `__proto__`
 * key, which every object built from it (zod's, ours) would drop without a word. Walked without recursion.
 */
function oddShape(value: unknown): string | null {
  const pending: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }]
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    const { value: v, depth } = next
    if (v === null || typeof v !== 'object') continue
    if (depth > MAX_JSON_DEPTH) return `request body is nested deeper than ${MAX_JSON_DEPTH} levels`
    for (const [key, child] of Object.entries(v)) {
      if (key === '__proto__') return 'request body has a key named __proto__'
      pending.push({ value: child, depth: depth + 1 })
    }
  }
  return null
}

/** Validates path params; a bad id is a 404 (it names nothing that can exist), never a path. */
export function params<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const parsed = schema.safeParse(c.req.param())
  if (!parsed.success) throw new GatewayError('NOT_FOUND', 404, 'no such resource', { details: issuesOf(parsed.error) })
  return parsed.data
}
