// Query strings and urlencoded forms, parsed as Express 4 does with its 'extended' parser (qs):
// `a[b]=1` is `{ a: { b: '1' } }`, `a[]=1&a[]=2` is `{ a: ['1', '2'] }`. qs is loaded only for a
// string with a bracket in it, so a flat one costs a fresh worker nothing more than URLSearchParams.
import type { HayQuery } from '../../types.js'

/** Any `[`, raw or percent-encoded (qs decodes keys before it splits them). */
const BRACKET = /\[|%5b/i

/** `?a=1&a=2` is `{ a: ['1', '2'] }`; nested keys wait for {@link parseQuery}. */
function parseFlat(search: string): HayQuery {
  const query: Record<string, string | string[]> = {}
  for (const [key, value] of new URLSearchParams(search)) {
    const prev = query[key]
    query[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value]
  }
  return query
}

/** A request's query string, with Express's options for `req.query`. */
export function parseQuery(search: string): HayQuery | Promise<HayQuery> {
  if (!BRACKET.test(search)) return parseFlat(search)
  return import('qs').then(({ parse }) => parse(search, { allowPrototypes: true }) as HayQuery)
}

/**
 * An urlencoded body, with express.urlencoded({ extended: true })'s options: nesting past 32 levels
 * is a RangeError (a 400 for the caller), and indices up to the number of fields make arrays.
 */
export function parseForm(body: string): HayQuery | Promise<HayQuery> {
  if (!BRACKET.test(body)) return parseFlat(body)
  const fields = body.split('&').length
  return import('qs').then(
    ({ parse }) =>
      parse(body, {
        allowPrototypes: true,
        arrayLimit: Math.max(100, fields),
        depth: 32,
        strictDepth: true,
        parameterLimit: fields,
      }) as HayQuery,
  )
}
