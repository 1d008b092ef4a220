#!/usr/bin/env node
// `npx plugin-gateway <command>`: the operator CLI (package.json "bin"). Entry only wires.
// fetch from the undici package, as the gateway's: Node 20's built-in one never settles when a peer
// drops the connection unanswered, and the CLI would exit 13 without a word instead of UNREACHABLE.
import '../node/web-globals.js'
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
