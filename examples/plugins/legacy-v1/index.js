// @ts-check
// A legacy (SDK v1) worker: plain node:http, no SDK. Its metadata lives in package.json; the
// gateway starts it as `node index.js` with PORT, HAY_ORG_CONFIG and HAY_ORG_AUTH (CONTRACT.md §2).
import { createServer } from 'node:http'

/** @typedef {{ org?: { id?: string }, config?: Record<string, unknown> }} OrgConfig */

const port = Number(process.env.PORT)
/** @type {OrgConfig} */
const orgConfig = JSON.parse(process.env.HAY_ORG_CONFIG ?? '{}')
const orgId = orgConfig.org?.id ?? null
const greeting = String(orgConfig.config?.greeting ?? 'hello')
const hasAuth = process.env.HAY_ORG_AUTH !== undefined

/**
 * @param {import('node:http').ServerResponse} res
 * @param {number} status
 * @param {unknown} body
 */
function json(res, status, body) {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

const server = createServer((req, res) => {
  const path = (req.url ?? '/').split('?', 1)[0]
  if (req.method === 'GET' && path === '/health') return json(res, 200, { status: 'healthy', pid: process.pid, orgId })
  if (req.method === 'GET' && path === '/hello') return json(res, 200, { greeting, orgId, hasAuth })
  if (req.method === 'POST' && path === '/validate-auth') {
    // CONTRACT.md §3: {"config"?, "authState": {"methodId", "credentials"}} → {"valid", "error"?}
    /** @type {Buffer[]} */
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      let apiKey
      try {
        apiKey = JSON.parse(Buffer.concat(chunks).toString('utf8'))?.authState?.credentials?.apiKey
      } catch {
        return json(res, 400, { error: { code: 'INVALID_JSON', message: 'body must be JSON' } })
      }
      if (typeof apiKey === 'string' && apiKey.length > 0) return json(res, 200, { valid: true })
      json(res, 200, { valid: false, error: 'apiKey must be a non-empty string' })
    })
    return
  }
  if (req.method === 'POST' && path === '/echo') {
    /** @type {Buffer[]} */
    const chunks = []
    req.on('data', (chunk) => chunks.push(chunk))
    req.on('end', () => {
      res.writeHead(200, { 'content-type': req.headers['content-type'] ?? 'application/octet-stream' })
      res.end(Buffer.concat(chunks))
    })
    return
  }
  json(res, 404, { error: { code: 'NOT_FOUND', message: `no route for ${req.method} ${path}` } })
})

server.listen(port, '127.0.0.1', () => console.log(`legacy-v1 listening on 127.0.0.1:${port}`))
process.on('SIGTERM', () => server.close(() => process.exit(0)))
