// Express's content-type helpers, reduced to the types a route answers with: `res.type('png')`
// looks the extension up (unknown ones are application/octet-stream, as in Express), and a
// text-like type gets `charset=utf-8` whenever it is set, as Express's `res.set` adds it.

const BY_EXTENSION: Record<string, string> = {
  bin: 'application/octet-stream',
  css: 'text/css',
  csv: 'text/csv',
  gif: 'image/gif',
  htm: 'text/html',
  html: 'text/html',
  ico: 'image/x-icon',
  jpeg: 'image/jpeg',
  jpg: 'image/jpeg',
  js: 'application/javascript',
  json: 'application/json',
  md: 'text/markdown',
  mjs: 'application/javascript',
  pdf: 'application/pdf',
  png: 'image/png',
  svg: 'image/svg+xml',
  text: 'text/plain',
  txt: 'text/plain',
  webp: 'image/webp',
  xml: 'application/xml',
  zip: 'application/zip',
}

/** `json`, `.json` or `application/json` → the MIME type. */
export function mimeType(typeOrExtension: string): string {
  if (typeOrExtension.includes('/')) return typeOrExtension
  const ext = typeOrExtension.replace(/^\./, '').toLowerCase()
  return BY_EXTENSION[ext] ?? 'application/octet-stream'
}

const TEXT_LIKE = /^(text\/|application\/(javascript|json))/i
const HAS_CHARSET = /;\s*charset\s*=/i

/** The content-type `res.set` stores: utf-8 added to a text-like type that names no charset. */
export function withDefaultCharset(contentType: string): string {
  if (HAS_CHARSET.test(contentType) || !TEXT_LIKE.test(contentType.split(';', 1)[0] ?? '')) return contentType
  return `${contentType}; charset=utf-8`
}

/** The content-type `res.send(string)` sends: always utf-8, the charset the bytes are in. */
export function withUtf8(contentType: string): string {
  const [type = '', ...params] = contentType.split(';')
  const kept = params.map((p) => p.trim()).filter((p) => p !== '' && !/^charset\s*=/i.test(p))
  return [type.trim(), ...kept, 'charset=utf-8'].join('; ')
}
