#!/usr/bin/env node
import pino from 'pino'
import { ConfigError, loadConfig } from '../config.js'
import { startGateway } from './gateway.js'

// Entry only wires: config → gateway → signals (STYLE.md §13).
let config
try {
  config = loadConfig(process.env)
} catch (err) {
  if (!(err instanceof ConfigError)) throw err
  process.stderr.write(`plugin-gateway: ${err.message}\n`)
  process.exit(1)
}

const log = pino({ level: config.logLevel, base: { service: 'plugin-gateway' } })
const gateway = await startGateway({ config, log })
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
