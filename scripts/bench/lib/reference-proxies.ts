// Reference proxies in front of the same worker, each in its own process.
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import getPort from 'get-port'
import { pollUntil, timedRequest } from './http.js'
import { findBinary, PROXIES_DIR, ROOT } from './paths.js'
import { minimalEnv, startProcess } from './procs.js'

export interface RunningProxy {
  url: string
  /** The proxy's own process, whose CPU time is charged to the requests. */
  pid: number
  stop(): Promise<void>
}

/** A reference that cannot run here (nginx not installed) is skipped with the reason. */
export type ProxyStart = RunningProxy | { skipped: string }

async function startNodeProxy(name: string, script: string, upstream: string, nodeArgs: readonly string[] = []): Promise<RunningProxy> {
  const proc = startProcess(name, process.execPath, [...nodeArgs, '--import', 'tsx', join(PROXIES_DIR, script)], {
    env: minimalEnv({ UPSTREAM: upstream, PORT: '0' }),
    cwd: ROOT,
  })
  const url = (await proc.waitForLine(/listening on (http:\/\/\S+)/))[1] as string
  return { url, pid: proc.pid, stop: () => proc.stop() }
}

/** `nodeArgs`: node flags for the proxy's process (e.g. --cpu-prof). */
export const startUndiciProxy = (upstream: string, nodeArgs?: readonly string[]) =>
  startNodeProxy('undici-proxy', 'undici-proxy.ts', upstream, nodeArgs)
export const startFastifyProxy = (upstream: string, nodeArgs?: readonly string[]) =>
  startNodeProxy('fastify-proxy', 'fastify-proxy.ts', upstream, nodeArgs)
export const startGatewayForwarder = (upstream: string, nodeArgs?: readonly string[]) =>
  startNodeProxy('gateway-forwarder', 'gateway-forwarder.ts', upstream, nodeArgs)

/** nginx, one process (master_process off), keep-alive to the upstream; skipped when not installed. */
export async function startNginx(upstream: string): Promise<ProxyStart> {
  const bin = findBinary('nginx')
  if (!bin) return { skipped: 'nginx is not installed (`apt-get install -y nginx`)' }
  const dir = await mkdtemp(join(tmpdir(), 'plugin-gateway-bench-nginx-'))
  const port = await getPort({ host: '127.0.0.1' })
  const conf = `
daemon off;
master_process off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  # The worker (node:http) closes idle keep-alive sockets after 5 s: nginx lets go first, or it races.
  # Like the Node proxies, no cap on requests per keep-alive connection (nginx closes after 1000).
  keepalive_requests 1000000;
  upstream worker { server ${upstream.replace(/^http:\/\//, '')}; keepalive 64; keepalive_timeout 4s; keepalive_requests 1000000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://worker;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`
  await writeFile(join(dir, 'nginx.conf'), conf)
  const proc = startProcess('nginx', bin, ['-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')], {
    env: minimalEnv(),
  })
  const url = `http://127.0.0.1:${port}`
  const stop = async () => {
    await proc.stop()
    await rm(dir, { recursive: true, force: true })
  }
  try {
    await pollUntil(
      'nginx to listen',
      () =>
        timedRequest(`${url}/`).then(
          () => true,
          () => undefined,
        ),
      10_000,
    )
  } catch (err) {
    await stop()
    throw new Error(`nginx did not start: ${proc.stderrTail() || (err as Error).message}`)
  }
  return { url, pid: proc.pid, stop }
}
