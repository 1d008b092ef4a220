#!/usr/bin/env node
import './web-globals.js' // first and alone: the rest is imported once it has run (see the module)
import type { Config } from '../config.js'
import type { RunningGateway } from './gateway.js'

const [{ ConfigError, loadConfig }, { isGatewayError }, { createLogger }, { startGateway }] = await Promise.all([
  import('../config.js'),
  import('../core/index.js'),
  import('../observability/node/index.js'),
  import('./gateway.js'),
])

// Entry only wires: config → gateway → signals (STYLE.md §13).
let config: Config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`plugin-gateway: ${err.message}\n`)
  process.exit(1)
}

const log = createLogger({ level: config.logLevel })
let gateway: RunningGateway
try {
  gateway = await startGateway({ config, log })
} catch (err) {
  // A coded refusal (e.g. SECRETS_UNAVAILABLE: sealed secrets and no SECRET_KEY) is an operator's
  // fix, not a crash: say what to do and exit 1.
  if (!isGatewayError(err)) throw err
  process.stderr.write(`plugin-gateway: cannot start (${err.code}): ${err.message}\n`)
  process.exit(1)
}
// Whoever read stdout may have gone (a dead log shipper): the gateway goes on serving, unheard.
process.stdout.on('error', () => {})
process.stdout.write(`plugin-gateway listening on ${gateway.url}\n`)

let signals = 0
const shutdown = (signal: NodeJS.Signals) => {
  if (++signals > 1) return // a second signal while draining changes nothing; workers are being stopped
  log.info({ signal }, 'shutting down')
  gateway.close().then(
    () => process.exit(0),
    (err: unknown) => {
      log.error({ err }, 'shutdown failed')
      process.exit(1)
    },
  )
}
process.on('SIGTERM', shutdown)
process.on('SIGINT', shutdown)
