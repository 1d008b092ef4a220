// @ts-check
import { defineHayPlugin } from '@plugin-gateway/sdk'

/** @typedef {import('@plugin-gateway/sdk').HayConfigRuntimeAPI} HayConfigRuntimeAPI */

/** Request headers the echo reflects back; everything else stays private. */
const ECHOED_HEADERS = ['content-type', 'user-agent', 'x-request-id', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-host']

export default defineHayPlugin((globalCtx) => {
  /** @type {HayConfigRuntimeAPI | undefined} set by onStart, which runs before any request */
  let config
  const prefix = () => String(config?.getOptional('prefix') ?? 'echo')

  return {
    name: 'Echo',

    onInitialize({ register }) {
      register.config({
        prefix: { type: 'string', label: 'Reply prefix', default: 'echo', env: 'ECHO_PREFIX' },
      })

      register.route('POST', '/echo', (req, res) => {
        /** @type {Record<string, string | string[] | undefined>} */
        const headers = {}
        for (const name of ECHOED_HEADERS) if (req.headers[name] !== undefined) headers[name] = req.headers[name]
        res.json({ prefix: prefix(), method: req.method, path: req.path, query: req.query, headers, body: req.body })
      })

      register.route('GET', '/items/:id', (req, res) => {
        res.json({ prefix: prefix(), id: req.params.id, query: req.query })
      })

      // Answers the request's exact bytes: what a signature check would hash.
      register.route('POST', '/raw', (req, res) => {
        res.status(200).type('application/octet-stream').send(req.rawBody)
      })

      register.route('GET', '/boom', async () => {
        throw new Error('boom: a handler failure becomes a 500')
      })

      register.ui.extension({ slot: 'after-settings', component: 'components/EchoSettings.vue' })
      globalCtx.logger.debug('echo routes registered')
    },

    onStart(ctx) {
      config = ctx.config
    },
  }
})
