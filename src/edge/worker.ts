// Cloudflare Workers entry (wrangler.toml `main`). Only wires: bindings are read per request by the app.
import { consoleLogger } from './console-logger.js'
import { createEdgeApp } from './app.js'

export default createEdgeApp({ log: consoleLogger('info') })
