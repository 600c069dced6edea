import { ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';

/** The compiled server (`npm test` builds before running Jest). */
export const SERVER_ENTRY = path.join(__dirname, '..', '..', 'dist', 'main.js');

export interface ProcessResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs the compiled server with exactly `env` (plus PATH) and collects its output. */
export function spawnServer(env: Record<string, string>): {
  child: ChildProcess;
  output: () => { stdout: string; stderr: string };
  exited: Promise<ProcessResult>;
} {
  const child = spawn(process.execPath, [SERVER_ENTRY], {
    env: { PATH: process.env.PATH ?? '', ...env },
    // Run from a scratch folder so no developer .env file is picked up.
    cwd: env.CWD ?? process.cwd(),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<ProcessResult>((resolve) => {
    child.on('exit', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, output: () => ({ stdout, stderr }), exited };
}

/** Resolves once `predicate` holds for the output, or rejects after `timeoutMs`. */
export async function waitForOutput(
  output: () => { stdout: string; stderr: string },
  predicate: (text: string) => boolean,
  timeoutMs = 15000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const { stdout, stderr } = output();
    if (predicate(stdout + stderr)) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`Timed out waiting for server output:\n${JSON.stringify(output())}`);
}
