// Writes sdk/dist/runner-bundle.cache, the V8 code cache the runner's executable (sdk/src/runner/entry.cjs)
// compiles its bundle with. Run by scripts/build-runner.mjs in a process of its own, with the node that
// builds: it starts the runner for a throwaway plugin, as a worker starts, serves it a few requests as
// the gateway's first ones, and then saves the code V8 has compiled by then, the lazily compiled
// functions of that path included. Exit 0 once written.
'use strict'
const { mkdtempSync, rmSync, writeFileSync } = require('node:fs')
const http = require('node:http')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { CODE_CACHE, compileBundle, runBundle } = require('../sdk/dist/runner.cjs')

const PLUGIN = `export default {
  name: 'code-cache',
  onInitialize({ register }) {
    register.config({ prefix: { type: 'string', default: 'x' } })
    register.route('GET', '/items/:id', (req, res) => { res.json({ id: req.params.id, query: req.query }) })
    register.route('POST', '/echo', (req, res) => { res.status(201).json({ body: req.body }) })
  },
}
`
// The requests a fresh worker's first minutes bring: the metadata fetch, a health probe, routes.
const REQUESTS = [
  { method: 'GET', path: '/metadata' },
  { method: 'GET', path: '/health' },
  { method: 'GET', path: '/items/1?q=1' },
  { method: 'POST', path: '/echo', body: '{"a":1}' },
  { method: 'GET', path: '/missing' },
]

const dir = mkdtempSync(join(tmpdir(), 'runner-code-cache-'))
process.on('exit', () => rmSync(dir, { recursive: true, force: true }))
writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', 'hay-plugin': { entry: './index.js' } }))
writeFileSync(join(dir, 'index.js'), PLUGIN)

process.env.HAY_ORG_CONFIG = JSON.stringify({ org: { id: 'code-cache' }, config: {} })
process.argv.splice(2, Infinity, `--plugin-path=${dir}`, '--org-id=code-cache', '--port=0', '--mode=production')
// The runner reports its port with process.send, which a process without an IPC channel lacks: take it here.
process.send = (message) => {
  if (message?.type === 'ready') void serve(message.port)
  return true
}

const script = compileBundle()
runBundle(script)

/** @param {number} port */
async function serve(port) {
  for (const { method, path, body } of REQUESTS) await request(port, method, path, body)
  writeFileSync(CODE_CACHE, script.createCachedData())
  process.exit(0)
}

/**
 * @param {number} port
 * @param {string} method
 * @param {string} path
 * @param {string} [body]
 * @returns {Promise<void>}
 */
function request(port, method, path, body) {
  return new Promise((resolve, reject) => {
    const headers = body ? { 'content-type': 'application/json' } : {}
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      res.resume().on('end', resolve)
    })
    req.on('error', reject)
    req.end(body)
  })
}

setTimeout(() => {
  process.stderr.write('runner-code-cache: the runner did not serve within 30 s\n')
  process.exit(1)
}, 30_000).unref()
