// @ts-check
import { createHmac, timingSafeEqual } from 'node:crypto'
import { defineHayPlugin } from '@plugin-gateway/sdk'

/** @typedef {import('@plugin-gateway/sdk').HayConfigRuntimeAPI} HayConfigRuntimeAPI */

const SIGNATURE_HEADER = 'x-signature'
const KEY_PREFIX = 'whk_'
const KEY_MIN_LENGTH = 12

/**
 * True when `header` is `sha256=<hex>` of HMAC-SHA256(secret, raw). Compared in constant time.
 * @param {string | undefined} header
 * @param {Buffer} raw
 * @param {string} secret
 */
function isValidSignature(header, raw, secret) {
  if (!header?.startsWith('sha256=')) return false
  const given = Buffer.from(header.slice('sha256='.length), 'hex')
  const expected = createHmac('sha256', secret).update(raw).digest()
  return given.length === expected.length && timingSafeEqual(given, expected)
}

export default defineHayPlugin(() => {
  /** @type {HayConfigRuntimeAPI | undefined} set by onStart, which runs before any request */
  let config

  return {
    name: 'Webhook',

    onInitialize({ register }) {
      register.config({
        webhookSecret: { type: 'string', label: 'Webhook signing secret', required: true, encrypted: true },
        apiKey: { type: 'string', label: 'API key', description: `Starts with ${KEY_PREFIX}`, encrypted: true },
      })
      register.auth.apiKey({ id: 'apiKey', label: 'API key', configField: 'apiKey' })

      register.route('POST', '/webhook', (req, res) => {
        const secret = config?.getOptional('webhookSecret')
        if (typeof secret !== 'string' || secret === '') {
          res.status(503).json({ error: { code: 'NOT_CONFIGURED', message: 'webhookSecret is not set' } })
          return
        }
        // The signature covers the bytes as sent, never a re-serialised req.body.
        if (!isValidSignature(req.get(SIGNATURE_HEADER), req.rawBody, secret)) {
          res.status(401).json({ error: { code: 'BAD_SIGNATURE', message: 'signature does not match the body' } })
          return
        }
        const event = /** @type {{ type?: unknown }} */ (req.body)
        res.json({ received: true, type: typeof event.type === 'string' ? event.type : null, bytes: req.rawBody.length })
      })
    },

    onStart(ctx) {
      config = ctx.config
    },

    onValidateAuth(ctx) {
      const auth = ctx.auth.get()
      if (auth?.methodId !== 'apiKey') throw new Error(`unsupported auth method: ${auth?.methodId ?? 'none'}`)
      const key = auth.credentials.apiKey
      if (typeof key !== 'string' || !key.startsWith(KEY_PREFIX) || key.length < KEY_MIN_LENGTH) {
        throw new Error(`API key must start with ${KEY_PREFIX} and be at least ${KEY_MIN_LENGTH} characters`)
      }
      return true
    },
  }
})
