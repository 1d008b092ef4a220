#!/usr/bin/env node
// `npx plugin-gateway <command>`: the operator CLI (package.json "bin"). Entry only wires.
import { runCli } from './run.js'

const code = await runCli(process.argv.slice(2), {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
  now: () => Date.now(),
  // The gateway's own entry: it reads its config (src/config.ts), serves, and handles signals.
  startGateway: async () => {
    await import('../node/main.js')
  },
})
if (code !== 0) process.exitCode = code
