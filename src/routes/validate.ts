import type { Context } from 'hono'
import type { z } from 'zod'
import { GatewayError } from '../core/index.js'

const issuesOf = (error: z.ZodError) => error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))

/** Parses and validates a JSON body: malformed JSON and schema violations are 400s listing the issues. */
export async function jsonBody<S extends z.ZodType>(c: Context, schema: S): Promise<z.infer<S>> {
  let raw: unknown
  try {
    raw = await c.req.json()
  } catch {
    throw new GatewayError('BAD_REQUEST', 400, 'request body must be valid JSON')
  }
  const parsed = schema.safeParse(raw)
  if (!parsed.success) {
    throw new GatewayError('VALIDATION_FAILED', 400, 'request body is invalid', { details: issuesOf(parsed.error) })
  }
  return parsed.data
}

/** Validates path params; a bad id is a 404 (it names nothing that can exist), never a path. */
export function params<S extends z.ZodType>(c: Context, schema: S): z.infer<S> {
  const parsed = schema.safeParse(c.req.param())
  if (!parsed.success) throw new GatewayError('NOT_FOUND', 404, 'no such resource', { details: issuesOf(parsed.error) })
  return parsed.data
}
